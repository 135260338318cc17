package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/whenthen/whenthen/history/api"
	"github.com/whenthen/whenthen/internal/testenv"
)

// chromium returns the path of Debian's chromium. A missing browser
// fails the test, never skips it: `make test` installs it
// (scripts/with-services.sh).
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("WHENTHEN_TEST_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no chromium on PATH: run the tests through `make test` (scripts/with-services.sh installs it as root), " +
		"apt-get install chromium, or set WHENTHEN_TEST_CHROMIUM to a Chromium binary")
	return ""
}

var signInURL = regexp.MustCompile(`sign in   (http://[^/\s]+)/signin#token=(\S+)`)

// TestHistoryBrowser runs `whenthen dev` (the engine on examples/ with
// the history on its embedded store, filled by the example stream) and
// drives Debian's chromium through the page as a rule author would:
// sign in with the printed URL, overview → automation → Why not? for a
// record → one of its runs → the record's timeline. It saves
// screenshots in $WHENTHEN_SCREENSHOT_DIR (default: a temporary
// directory, logged).
func TestHistoryBrowser(t *testing.T) {
	browserPath := chromium(t)
	shots := os.Getenv("WHENTHEN_SCREENSHOT_DIR")
	if shots == "" {
		shots = t.TempDir()
	}
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}

	var out, errs testenv.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, &cmdEnv{stdout: &out, stderr: &errs, getenv: func(string) string { return "" }},
			[]string{"dev", "--speed", "0", "--log-level", "error"})
	}()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("whenthen dev did not stop")
		}
	}()
	var base, token string
	deadline := time.Now().Add(60 * time.Second)
	for base == "" {
		if m := signInURL.FindStringSubmatch(out.String()); m != nil {
			base, token = m[1], m[2]
		}
		if time.Now().After(deadline) {
			t.Fatalf("whenthen dev printed no sign-in URL:\n%s\n%s", out.String(), errs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Wait until the stream's runs are stored: every automation but the
	// tracker's and the date's has run on a record by then. (The
	// redelivered evt-0012 gives closed-won-brief's run again, with the
	// same run_id: stored once.)
	for {
		var list api.AutomationList
		req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/workspaces/acme/automations", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		if res, err := http.DefaultClient.Do(req); err == nil {
			_ = json.NewDecoder(res.Body).Decode(&list)
			res.Body.Close()
		}
		ran := map[string]bool{}
		for _, a := range list.Automations {
			ran[a.ID] = a.Runs > 0
		}
		if ran["closed-won-brief"] && ran["negotiation-brief"] && ran["new-owner-brief"] && ran["upsell-flow"] && ran["renewal-30d"] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the history's automations after 60s: %v\n%s", ran, out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}

	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(browserPath), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 1000))
	defer cancelAlloc()
	bctx, cancelB := chromedp.NewContext(alloc)
	defer cancelB()
	if err := chromedp.Do(bctx); err != nil { // start the browser, without a timeout
		t.Fatalf("starting %s: %v", browserPath, err)
	}
	tctx, cancelT := context.WithTimeout(bctx, 90*time.Second)
	defer cancelT()
	if _, err := chromedp.Call(tctx, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: "America/New_York"}); err != nil {
		t.Fatal(err)
	}
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(tctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(tctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(tctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		p := filepath.Join(shots, name)
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", p)
	}

	// Sign in with the URL dev printed: app.js fills the token from the
	// fragment; the person clicks.
	do("sign in", chromedp.Navigate(base+"/signin#token="+token), chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.Click(chromedp.CSS(".signin button")), chromedp.WaitVisible(chromedp.CSS("#a-closed-won-brief")))

	// The overview: every automation, with its chart and last run.
	page := text("main")
	for _, want := range []string{"closed-won-brief", "new-lead-nurture", "renewal-30d", "upsell-flow", "stale-deal-nudge", "Last run"} {
		if !strings.Contains(page, want) {
			t.Errorf("the overview lacks %q", want)
		}
	}
	if n, err := chromedp.Run(tctx, chromedp.Evaluate[int](`document.querySelectorAll("svg.chart rect").length`)); err != nil || n == 0 {
		t.Errorf("the overview's charts have %d bars (%v)", n, err)
	}
	// Times in the viewer's zone: app.js rewrote the UTC text.
	if tm := text("#a-closed-won-brief time"); strings.Contains(tm, "UTC") || tm == "" {
		t.Errorf("a time shown as %q, not in the viewer's time zone", tm)
	}
	shot("history-overview.png")

	// The automation, and Why not? for O-2001: the deal is Closed Won
	// above 200000, so the on_enter condition already holds: an update
	// now would not run it.
	do("open closed-won-brief", chromedp.Click(chromedp.CSS("#a-closed-won-brief a.name")), chromedp.WaitVisible(chromedp.CSS("#why-not")))
	if h := text("h1"); h != "closed-won-brief" {
		t.Fatalf("automation page title %q", h)
	}
	do("check O-2001", chromedp.SetValue(chromedp.CSS("#check_record"), "O-2001"),
		chromedp.Click(chromedp.CSS("#why-not button")), chromedp.WaitVisible(chromedp.CSS("#check-result")))
	res := text("#check-result")
	for _, want := range []string{"It would not run", "already_true", `record.stage == "Closed Won"`, "record.amount", "265000"} {
		if !strings.Contains(res, want) {
			t.Errorf("the Why not? result lacks %q:\n%s", want, res)
		}
	}
	shot("history-automation.png")

	// Its newest run, then the record's timeline.
	do("open a run", chromedp.Click(chromedp.CSS("table.runs tbody tr:first-child td:first-child a")),
		chromedp.WaitVisible(chromedp.CSS("section.actions")))
	runPage := text("main")
	// closed-won-brief is on_enter: the stage entered Closed Won.
	for _, want := range []string{"Run of closed-won-brief", "opportunity O-2001", "evt-0012", "Actions",
		"Before the change the condition did not hold (the record entered it)."} {
		if !strings.Contains(runPage, want) {
			t.Errorf("the run page lacks %q:\n%s", want, runPage)
		}
	}
	shot("history-run.png")
	do("open the record", chromedp.Click(chromedp.CSS("#record-link")), chromedp.WaitVisible(chromedp.CSS("table.runs")))
	if h := text("h1"); !strings.Contains(h, "O-2001") {
		t.Fatalf("record page title %q", h)
	}
	timeline := text("table.runs")
	for _, want := range []string{"closed-won-brief", "negotiation-brief", "new-owner-brief"} {
		if !strings.Contains(timeline, want) {
			t.Errorf("O-2001's timeline lacks %s:\n%s", want, timeline)
		}
	}
	shot("history-record.png")
}
