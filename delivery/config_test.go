package delivery_test

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/whenthen/whenthen/delivery"
	"github.com/whenthen/whenthen/internal/yamlfile"
)

func TestParseConfig(t *testing.T) {
	data, err := os.ReadFile("testdata/good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := delivery.ParseConfig("good.yaml", data, "kafka")
	if err != nil {
		t.Fatalf("ParseConfig: %v", err)
	}
	if len(c.Destinations) != 3 {
		t.Fatalf("%d destinations", len(c.Destinations))
	}
	d := c.Destinations[1]
	if d.Name != "revops-email" || strings.Join(d.Actions, ",") != "brief" || d.Timeout != 20*time.Second || d.MaxAge != 2*time.Hour ||
		d.Concurrency != delivery.DefaultConcurrency || d.Retry.Initial != 5*time.Second || d.Email.SMTP.Port != 587 || d.Email.SMTP.TLS != "starttls" {
		t.Errorf("destination %+v", d)
	}
	if d := c.Destinations[0]; d.Timeout != delivery.DefaultTimeout || d.MaxAge != delivery.DefaultMaxAge || d.Retry.Max != delivery.DefaultRetryMax {
		t.Errorf("defaults %+v", d)
	}
	if c.Brief.AI.Model != "gpt-4o-mini" || c.Brief.MaxValueBytes != 300 || !c.Destinations[2].DryRun {
		t.Errorf("config %+v", c)
	}
}

// TestParseConfigErrors checks that every problem of a bad file is
// reported at once, each at its FILE:LINE:COL.
func TestParseConfigErrors(t *testing.T) {
	data, err := os.ReadFile("testdata/bad.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("testdata/bad.err")
	if err != nil {
		t.Fatal(err)
	}
	_, err = delivery.ParseConfig("bad.yaml", data, "kafka")
	var list yamlfile.ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("ParseConfig: %v, want an ErrorList", err)
	}
	if got := list.Error() + "\n"; got != string(want) {
		t.Errorf("errors:\n%s\nwant:\n%s", got, want)
	}
	if _, err := delivery.ParseConfig("x.yaml", []byte("destinations: [\n"), "kafka"); err == nil || !strings.HasPrefix(err.Error(), "x.yaml:") {
		t.Errorf("a YAML syntax error: %v", err)
	}
}
