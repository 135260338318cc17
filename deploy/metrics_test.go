//go:build linux

package deploy

import (
	"bufio"
	"debug/elf"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/whenthen/whenthen/actions"
	"github.com/whenthen/whenthen/history/auth"
	"github.com/whenthen/whenthen/ingest"
	"github.com/whenthen/whenthen/internal/childproc"
	"github.com/whenthen/whenthen/internal/testenv"
)

// TestMain stops the shared Redis the tests may start (testenv).
func TestMain(m *testing.M) { testenv.Main(m) }

// buildRE finds the Dockerfile's build command.
var buildRE = regexp.MustCompile(`(?m)^RUN (CGO_ENABLED=0 go build .*) -o (\S+) (\S+)$`)

var static struct {
	once sync.Once
	path string
	err  error
}

// staticBinary builds cmd/whenthen with the Dockerfile's own build
// command (into a temporary directory instead of /out) and checks that
// the result is static: no program interpreter, no shared libraries.
// It is the binary the metrics test runs.
func staticBinary(t *testing.T) string {
	t.Helper()
	static.once.Do(func() {
		b, err := os.ReadFile("Dockerfile")
		if err != nil {
			static.err = err
			return
		}
		m := buildRE.FindStringSubmatch(string(b))
		if m == nil {
			static.err = fmt.Errorf("the Dockerfile has no `RUN CGO_ENABLED=0 go build … -o OUT PKG` line")
			return
		}
		dir, err := os.MkdirTemp("", "whenthen-deploy-")
		if err != nil {
			static.err = err
			return
		}
		static.path = filepath.Join(dir, "whenthen")
		// The command as the Dockerfile has it, run from the repository
		// root (the build context) by sh, as RUN does.
		cmd := exec.Command("sh", "-c", m[1]+" -o "+static.path+" "+m[3])
		cmd.Dir = ".."
		if out, err := cmd.CombinedOutput(); err != nil {
			static.err = fmt.Errorf("%s: %v\n%s", m[1], err, out)
		}
	})
	if static.err != nil {
		t.Fatal(static.err)
	}
	return static.path
}

// TestImageBinaryStatic: the Dockerfile's build gives a static binary,
// which distroless/static (no libc) can run.
func TestImageBinaryStatic(t *testing.T) {
	path := staticBinary(t)
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary has a program interpreter: it is dynamically linked")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("the binary needs shared libraries: %v", libs)
	}
	if ldd, err := exec.LookPath("ldd"); err == nil {
		out, _ := exec.Command(ldd, path).CombinedOutput()
		if !strings.Contains(string(out), "not a dynamic executable") && !strings.Contains(string(out), "statically linked") {
			t.Errorf("ldd %s: %s", path, out)
		}
	}
	b, _ := os.ReadFile("Dockerfile")
	for _, want := range []string{"FROM gcr.io/distroless/static", "USER 65532", "AS build", "COPY --from=build"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("the Dockerfile lacks %q", want)
		}
	}
}

const metricsRules = `
workspace: acme
automations:
  - id: won-flow
    when: {record: opportunity, on: [updated]}
    if: record.stage == "Closed Won"
    then:
      flow: {id: won, who: record.primary_contact_id}
`

const hookSecret = "whsec_c2lnbmluZy1zZWNyZXQtb2YtdGhlLWRlcGxveS10ZXN0"

// child is one service, a child process of the test.
type child struct {
	name string
	addr string // of /metrics, /healthz, /readyz
	p    *childproc.Process
	out  *testenv.Buffer
}

func startChild(t *testing.T, name, addr string, env []string, args ...string) *child {
	t.Helper()
	c := &child{name: name, addr: addr, out: &testenv.Buffer{}}
	cmd := exec.Command(staticBinary(t), args...)
	cmd.Stdout, cmd.Stderr = c.out, c.out
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.TempDir()}, env...)
	p, err := childproc.Start(cmd)
	if err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	c.p = p
	t.Cleanup(func() {
		p.Stop(15 * time.Second)
		if t.Failed() {
			t.Logf("%s output:\n%s", name, c.out.String())
		}
	})
	testenv.WaitFor(t, 30*time.Second, name+" ready", func() bool {
		select {
		case <-p.Done():
			t.Fatalf("%s exited: %v\n%s", name, p.Err(), c.out.String())
		default:
		}
		code, _ := get("http://" + addr + probePaths["readiness"])
		return code == 200
	})
	// The endpoints the Kubernetes probes use (TestKubernetes).
	for kind, path := range probePaths {
		if code, body := get("http://" + addr + path); code != 200 {
			t.Errorf("%s %s (the %s probe): %d %s", name, path, kind, code, body)
		}
	}
	return c
}

func get(url string) (int, string) {
	res, err := (&http.Client{Timeout: 3 * time.Second}).Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// names returns the sample names of a /metrics page.
func names(body string) map[string]bool {
	out := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		if i := strings.IndexAny(line, "{ "); i > 0 {
			out[line[:i]] = true
		}
	}
	return out
}

// TestMetricsServed starts the three services as the image runs them (the
// Dockerfile's static binary as child processes) against kfake and a real
// redis-server — whenthen run, whenthen deliver with a webhook
// destination, whenthen history on its embedded SQLite store — sends
// events through them, and checks that every metric an alert or a
// dashboard panel names is on the /metrics of the service it selects.
func TestMetricsServed(t *testing.T) {
	used := usedMetrics(t)
	kc := testenv.Kafka(t, ingest.DefaultTopic, actions.DefaultActionsTopic, actions.DefaultRunsTopic,
		actions.DefaultDLQTopic, actions.DefaultOutcomesTopic)
	brokers := strings.Join(kc.Addrs(), ",")
	rs := testenv.StartRedis(t)
	hooks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	t.Cleanup(hooks.Close)

	dir := t.TempDir()
	rulesDir := filepath.Join(dir, "rules")
	if err := os.MkdirAll(rulesDir, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(path, s string) {
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(rulesDir, "r.yaml"), metricsRules)
	deliverCfg := filepath.Join(dir, "deliver.yaml")
	write(deliverCfg, fmt.Sprintf("kafka: {brokers: [%q]}\nredis: {url: %q}\ndestinations:\n"+
		"  - {name: crm-hook, workspaces: [acme], actions: [flow], webhook: {url: %q, secret_env: HOOK_SECRET}, timeout: 2s}\n",
		kc.Addrs()[0], rs.URL(), hooks.URL+"/hook"))

	svc := map[string]*child{}
	common := []string{"--log-format", "json", "--shutdown-timeout", "5s"}
	addr := testenv.FreeAddr(t)
	svc["run"] = startChild(t, "run", addr, nil, append([]string{"run", "--kafka-brokers", brokers,
		"--redis-url", rs.URL(), "--rules", rulesDir, "--metrics-listen", addr, "--reload-interval", "-1s"}, common...)...)
	addr = testenv.FreeAddr(t)
	svc["deliver"] = startChild(t, "deliver", addr, []string{"HOOK_SECRET=" + hookSecret}, append([]string{"deliver",
		"--config", deliverCfg, "--metrics-listen", addr, "--reload-interval", "-1s"}, common...)...)
	addr = testenv.FreeAddr(t)
	_, hash := auth.NewToken()
	svc["history"] = startChild(t, "history", addr, nil, append([]string{"history", "--kafka-brokers", brokers,
		"--history-listen", addr, "--history-db", "sqlite:" + filepath.Join(dir, "history.db"),
		"--history-token", "ops:" + hash + ":acme", "--rules", rulesDir}, common...)...)

	// Events through the three: a record won gives a flow action, its
	// webhook call, its outcome, and the runs, actions and outcomes stored.
	var msgs []kafka.Message
	for i := range 3 {
		rec := fmt.Sprintf("opp-%d", i)
		msgs = append(msgs, kafka.Message{Key: []byte(rec), Value: fmt.Appendf(nil,
			`{"id":"e%d","time":"2026-12-01T10:00:00Z","workspace":"acme","object":"opportunity","type":"record.updated",`+
				`"record":{"id":%q,"stage":"Closed Won","amount":5000,"primary_contact_id":"c-%d"},"before":{"stage":"Negotiation"}}`, i, rec, i)})
	}
	kc.Produce(t, ingest.DefaultTopic, msgs...)
	testenv.WaitFor(t, 60*time.Second, "three outcomes", func() bool { return kc.Count(actions.DefaultOutcomesTopic) >= 3 })

	for _, name := range sortedKeys(used) {
		want := used[name]
		c := svc[name]
		var missing []string
		deadline := time.Now().Add(30 * time.Second)
		for {
			code, body := get("http://" + c.addr + "/metrics")
			if code != 200 {
				t.Fatalf("%s /metrics: %d %s", name, code, body)
			}
			have := names(body)
			missing = missing[:0]
			for _, m := range sortedKeys(want) {
				if !have[m] {
					missing = append(missing, fmt.Sprintf("%s (used by %s)", m, strings.Join(dedup(want[m]), "; ")))
				}
			}
			if len(missing) == 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		for _, m := range missing {
			t.Errorf("whenthen %s does not serve %s", name, m)
		}
		t.Logf("whenthen %s serves the %d metrics the alerts and panels use", name, len(want)-len(missing))
	}
}

func dedup(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}
