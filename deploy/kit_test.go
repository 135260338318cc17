package deploy

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// promtool finds promtool (Debian's prometheus package ships it; `make
// test` installs it as root through scripts/with-services.sh). A missing
// promtool fails the test: the rules are never left unchecked.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool is not on PATH: install Debian's prometheus package (apt-get install prometheus), " +
			"or run the tests through scripts/with-services.sh, which installs it as root")
	}
	return p
}

// TestAlertRules checks deploy/prometheus/alerts.yaml with `promtool check
// rules` and runs its unit tests with `promtool test rules`.
func TestAlertRules(t *testing.T) {
	pt := promtool(t)
	for _, args := range [][]string{{"check", "rules", "alerts.yaml"}, {"test", "rules", "alerts_test.yaml"}} {
		cmd := exec.Command(pt, args...)
		cmd.Dir = "prometheus"
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// TestEveryAlertTested: each alert of alerts.yaml is named by at least
// one alert_rule_test with an expected alert.
func TestEveryAlertTested(t *testing.T) {
	var tests struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string           `yaml:"alertname"`
				ExpAlerts []map[string]any `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	readYAML(t, "prometheus/alerts_test.yaml", &tests)
	fired := map[string]bool{}
	for _, tc := range tests.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fired[a.Alertname] = true
			}
		}
	}
	for _, r := range alertRules(t) {
		if !fired[r.Alert] {
			t.Errorf("alert %s has no test in which it fires", r.Alert)
		}
	}
}

type rule struct {
	Alert string `yaml:"alert"`
	Expr  string `yaml:"expr"`
}

func alertRules(t *testing.T) []rule {
	t.Helper()
	var f struct {
		Groups []struct {
			Rules []rule `yaml:"rules"`
		} `yaml:"groups"`
	}
	readYAML(t, "prometheus/alerts.yaml", &f)
	var out []rule
	for _, g := range f.Groups {
		out = append(out, g.Rules...)
	}
	if len(out) == 0 {
		t.Fatal("alerts.yaml has no rules")
	}
	return out
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// dashboard is the part of the Grafana JSON the tests read.
type dashboard struct {
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
	Panels []panel `json:"panels"`
}

type panel struct {
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource *struct {
		UID string `json:"uid"`
	} `json:"datasource"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}

func readDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile("grafana/whenthen.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("grafana/whenthen.json: %v", err)
	}
	return d
}

// panelExprs returns each panel's title and queries, rows' panels
// included.
func (d dashboard) panelExprs() map[string][]string {
	out := map[string][]string{}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			for _, tg := range p.Targets {
				out[p.Title] = append(out[p.Title], tg.Expr)
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

// TestDashboard: the data source is a variable every panel uses, and
// every query is valid PromQL (promtool checks them as recording rules,
// with Grafana's variables replaced by what they stand for).
func TestDashboard(t *testing.T) {
	d := readDashboard(t)
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
	}
	if vars["datasource"] != "datasource" {
		t.Errorf("no datasource variable of type datasource: %v", vars)
	}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if p.Type != "row" && (p.Datasource == nil || p.Datasource.UID != "${datasource}") {
				t.Errorf("panel %q does not use the ${datasource} variable", p.Title)
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)

	exprs := d.panelExprs()
	if len(exprs) < 15 {
		t.Fatalf("%d panels with queries, want the kit's", len(exprs))
	}
	repl := strings.NewReplacer("$__rate_interval", "5m", "$run_job", ".+", "$deliver_job", ".+", "$history_job", ".+")
	var rf strings.Builder
	rf.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	titles := sortedKeys(exprs)
	i := 0
	for _, title := range titles {
		for _, e := range exprs[title] {
			if strings.Contains(repl.Replace(e), "$") {
				t.Errorf("panel %q: a variable the test does not know in %s", title, e)
			}
			q, _ := json.Marshal(repl.Replace(e))
			i++
			rf.WriteString("      - record: dashboard:q" + itoa(i) + "\n        expr: " + string(q) + "\n")
		}
	}
	path := filepath.Join(t.TempDir(), "dashboard-rules.yaml")
	if err := os.WriteFile(path, []byte(rf.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool(t), "check", "rules", path).CombinedOutput(); err != nil {
		t.Errorf("promtool check rules on the dashboard's queries: %v\n%s", err, out)
	}
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// service is the whenthen service a query reads, from its job matcher.
var jobService = map[string]string{
	"whenthen-run": "run", "$run_job": "run",
	"whenthen-deliver": "deliver", "$deliver_job": "deliver",
	"whenthen-history": "history", "$history_job": "history",
}

var (
	selectorRE = regexp.MustCompile(`\b([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}`)
	jobRE      = regexp.MustCompile(`\bjob\s*=~?\s*"([^"]+)"`)
	metricRE   = regexp.MustCompile(`\b(whenthen_[a-z0-9_]+|process_[a-z0-9_]+)\b`)
)

// usedMetrics returns, per service, the metric names the alerts and the
// panels use, each with where it is used. Every metric must be selected
// with a job matcher that names its service.
func usedMetrics(t *testing.T) map[string]map[string][]string {
	t.Helper()
	out := map[string]map[string][]string{}
	add := func(where, expr string) {
		sels := selectorRE.FindAllStringSubmatch(expr, -1)
		if n := len(metricRE.FindAllString(expr, -1)); n != len(sels) {
			t.Errorf("%s: %d metric names but %d selectors with labels: select every metric with its job (%s)", where, n, len(sels), expr)
		}
		for _, s := range sels {
			j := jobRE.FindStringSubmatch(s[2])
			if j == nil {
				t.Errorf("%s: %s has no job matcher", where, s[0])
				continue
			}
			svc, ok := jobService[j[1]]
			if !ok {
				t.Errorf("%s: job %q is none of the services'", where, j[1])
				continue
			}
			if out[svc] == nil {
				out[svc] = map[string][]string{}
			}
			out[svc][s[1]] = append(out[svc][s[1]], where)
		}
	}
	for _, r := range alertRules(t) {
		add("alert "+r.Alert, r.Expr)
	}
	d := readDashboard(t)
	for title, es := range d.panelExprs() {
		for _, e := range es {
			add("panel "+title, e)
		}
	}
	return out
}
