package delivery

import (
	"crypto/x509"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/whenthen/whenthen/actions"
	"github.com/whenthen/whenthen/crm"
	"github.com/whenthen/whenthen/delivery/brief"
	"github.com/whenthen/whenthen/delivery/email"
	"github.com/whenthen/whenthen/delivery/webhook"
	"github.com/whenthen/whenthen/internal/yamlfile"
)

// plan is a compiled Config: the destinations with their senders, the
// field rules and the brief writer. A plan is never modified; a reload
// builds a new one.
type plan struct {
	dests  []*dest
	byName map[string]*dest
	fields []fieldRule
	brief  *brief.Writer
	// aiTimeout bounds writing one brief with the AI (0 without).
	aiTimeout time.Duration
}

// dest is a compiled destination.
type dest struct {
	Destination
	anyWS bool
	ws    map[string]bool
	send  sender
	// lease is how long a claim holds a job: waiting for a worker,
	// writing its content, the attempt, and settling it.
	lease time.Duration
}

func (d *dest) serves(a *actions.Action) bool {
	return (d.anyWS || d.ws[a.Workspace]) && slices.Contains(d.Actions, a.Type)
}

// route returns the destinations of a.
func (p *plan) route(a *actions.Action) []*dest {
	var out []*dest
	for _, d := range p.dests {
		if d.serves(a) {
			out = append(out, d)
		}
	}
	return out
}

// fieldRule is a compiled FieldRule.
type fieldRule struct {
	anyWS bool
	ws    map[string]bool
	allow map[string]map[string]bool // object → field names
}

// allowed returns the fields of object that may leave for workspace.
func (p *plan) allowed(schema *crm.Schema, workspace, object string) map[string]bool {
	for _, r := range p.fields {
		if r.anyWS || r.ws[workspace] {
			if a, ok := r.allow[object]; ok {
				return a
			}
			break
		}
	}
	return standardFields(schema, object)
}

func standardFields(schema *crm.Schema, object string) map[string]bool {
	out := map[string]bool{}
	if o, ok := schema.Object(object); ok {
		for _, f := range o.Fields {
			if !f.Custom {
				out[f.Name] = true
			}
		}
	}
	return out
}

// compile builds the plan of c, read from file: secrets from env, files
// read. Every problem is reported, at the position of the section it is
// in (a yamlfile.ErrorList).
func compile(c *Config, file string, schema *crm.Schema, env func(string) string) (*plan, error) {
	p := &plan{byName: map[string]*dest{}}
	var errs yamlfile.ErrorList
	var at *yaml.Node // the section being compiled
	bad := func(format string, args ...any) {
		e := &yamlfile.Error{File: file, Msg: fmt.Sprintf(format, args...)}
		if at != nil {
			e.Line, e.Col = at.Line, at.Column
		}
		errs = append(errs, e)
	}
	secret := func(what, name string) string {
		v := env(name)
		if v == "" {
			bad("%s: the environment variable %s is not set", what, name)
		}
		return v
	}
	caPool := func(what, path string) *x509.CertPool {
		if path == "" {
			return nil
		}
		pem, err := os.ReadFile(path)
		if err != nil {
			bad("%s: ca_file: %v", what, err)
			return nil
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			bad("%s: ca_file %s: no PEM certificate in it", what, path)
		}
		return pool
	}

	// Briefs.
	bc := c.Brief
	at = bc.At
	bo := brief.Options{System: bc.System, MaxValueBytes: bc.MaxValueBytes, MaxDataBytes: bc.MaxDataBytes}
	if bc.Template != "" {
		t, err := os.ReadFile(bc.Template)
		if err != nil {
			bad("brief.template: %v", err)
		}
		bo.Template = string(t)
	}
	if ai := bc.AI; ai != nil {
		at = ai.At
		key := ""
		if ai.APIKeyEnv != "" {
			key = secret("brief.ai.api_key_env", ai.APIKeyEnv)
		}
		timeout := ai.Timeout
		if timeout == 0 {
			timeout = brief.DefaultAITimeout
		}
		client := webhook.NewClient(webhook.ClientOptions{RootCAs: caPool("brief.ai", ai.CAFile),
			ResponseHeaderTimeout: timeout, MaxResponseBytes: 1 << 20})
		a, err := brief.NewAI(brief.AIOptions{BaseURL: ai.BaseURL, Model: ai.Model, APIKey: key, Timeout: timeout,
			Attempts: ai.Attempts, MaxTokens: ai.MaxTokens, Client: client})
		if err != nil {
			bad("brief.ai: %v", err)
		} else {
			bo.AI = a
			p.aiTimeout = a.Timeout()
		}
	}
	w, err := brief.New(bo)
	if err != nil {
		bad("%v", err)
	}
	p.brief = w

	// Field rules.
	for _, r := range c.Fields {
		at = r.At
		fr := fieldRule{ws: map[string]bool{}, allow: map[string]map[string]bool{}}
		for _, ws := range r.Workspaces {
			fr.anyWS = fr.anyWS || ws == "*"
			fr.ws[ws] = true
		}
		for obj, names := range r.Allow {
			o, ok := schema.Object(obj)
			if !ok {
				continue // reported by check
			}
			set := map[string]bool{"id": true}
			for _, n := range names {
				if n == "standard" {
					for k := range standardFields(schema, obj) {
						set[k] = true
					}
					continue
				}
				if _, ok := o.Field(n); !ok {
					bad("fields: %s has no field %q in the schema", obj, n)
				}
				set[n] = true
			}
			fr.allow[obj] = set
		}
		p.fields = append(p.fields, fr)
	}

	// Destinations.
	for i := range c.Destinations {
		cfg := c.Destinations[i]
		at = cfg.At
		what := "destination " + cfg.Name
		d := &dest{Destination: cfg, ws: map[string]bool{}}
		for _, ws := range cfg.Workspaces {
			d.anyWS = d.anyWS || ws == "*"
			d.ws[ws] = true
		}
		// A claimed job waits for a worker at most about one round of
		// attempts (2 × concurrency claimed for concurrency workers), then
		// is attempted: twice the longest attempt, and time to settle.
		d.lease = 2*(cfg.Timeout+p.aiTimeout) + 30*time.Second
		switch {
		case cfg.Webhook != nil:
			wc := cfg.Webhook
			secrets, err := webhook.ParseSecrets(secret(what+": webhook.secret_env", wc.SecretEnv))
			if err != nil && env(wc.SecretEnv) != "" {
				bad("%s: webhook.secret_env %s: %v", what, wc.SecretEnv, err)
			}
			d.send = &webhookSender{url: wc.URL, secrets: secrets, headers: wc.Headers,
				client: newClient(cfg, caPool(what+": webhook", wc.CAFile))}
		case cfg.Email != nil:
			ec := cfg.Email
			pw := ""
			if ec.SMTP.PasswordEnv != "" {
				pw = secret(what+": email.smtp.password_env", ec.SMTP.PasswordEnv)
			}
			s, err := email.NewSender(email.SMTPOptions{Host: ec.SMTP.Host, Port: ec.SMTP.Port, TLS: ec.SMTP.TLS,
				Username: ec.SMTP.Username, Password: pw, RootCAs: caPool(what+": email.smtp", ec.SMTP.CAFile)})
			if err != nil {
				bad("%s: %v", what, err)
			}
			es := &emailSender{smtp: s, from: ec.From}
			if dc := ec.Directory; dc != nil {
				if dc.File != "" {
					fd, err := email.LoadFile(dc.File)
					if err != nil {
						bad("%s: %v", what, err)
					}
					es.dir = fd
				} else {
					tok := ""
					if dc.TokenEnv != "" {
						tok = secret(what+": email.directory.token_env", dc.TokenEnv)
					}
					hd, err := email.NewHTTP(email.HTTPOptions{URL: dc.URL, Token: tok, TTL: dc.CacheTTL,
						Client: webhook.NewClient(webhook.ClientOptions{RootCAs: caPool(what+": email.directory", dc.CAFile)})})
					if err != nil {
						bad("%s: %v", what, err)
					}
					es.dir = hd
				}
			}
			d.send = es
		case cfg.Slack != nil:
			d.send = &slackSender{url: secret(what+": slack.url_env", cfg.Slack.URLEnv),
				client: newClient(cfg, caPool(what+": slack", cfg.Slack.CAFile))}
		}
		p.dests = append(p.dests, d)
		p.byName[d.Name] = d
	}
	if len(errs) > 0 {
		errs.Sort()
		return nil, errs
	}
	return p, nil
}

// newClient is the HTTP client of a destination: its timeout for the
// response headers, its concurrency for the connections.
func newClient(cfg Destination, roots *x509.CertPool) *webhook.Client {
	return webhook.NewClient(webhook.ClientOptions{ResponseHeaderTimeout: cfg.Timeout,
		MaxConnsPerHost: cfg.Concurrency, RootCAs: roots, UserAgent: "whenthen-deliver"})
}

// fingerprint says whether two destinations need different dispatchers
// (their concurrency differs); other changes apply to jobs in flight.
func (d *dest) fingerprint() string { return fmt.Sprint(d.Concurrency) }

// recordFields returns the allowed fields of r, in schema order, as JSON
// values.
func recordFields(r *crm.Record, allowed map[string]bool) ([]brief.Field, error) {
	b, err := r.AppendJSON(nil)
	if err != nil {
		return nil, err
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return nil, err
	}
	var out []brief.Field
	for _, f := range r.Object().Fields {
		if v, ok := all[f.Name]; ok && allowed[f.Name] {
			out = append(out, brief.Field{Name: f.Name, Value: v})
		}
	}
	return out, nil
}
