package delivery

import (
	"fmt"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/whenthen/whenthen/actions"
	"github.com/whenthen/whenthen/crm"
	"github.com/whenthen/whenthen/internal/yamlfile"
)

// Defaults of a destination.
const (
	DefaultTimeout      = 10 * time.Second
	DefaultMaxAge       = 24 * time.Hour
	DefaultConcurrency  = 16
	DefaultRetryInitial = time.Second
	DefaultRetryMax     = 5 * time.Minute
)

// Config is the delivery part of `whenthen deliver`'s config file: where
// actions go (destinations), how briefs are written (brief) and which
// record fields may leave whenthen (fields). docs/delivery.md describes
// every key. Parse it with [ParseConfig]; the service compiles it (reading
// secrets from the environment, CA, template and directory files) when it
// starts and on every reload.
type Config struct {
	Destinations []Destination `yaml:"destinations"`
	Brief        BriefConfig   `yaml:"brief"`
	Fields       []FieldRule   `yaml:"fields"`
}

// Destination is one receiver of actions: a Standard Webhooks endpoint, an
// SMTP server, or a Slack-compatible incoming webhook.
type Destination struct {
	At *yaml.Node `yaml:"-"`
	// Name identifies the destination in outcomes, metrics and Redis keys:
	// [a-z0-9][a-z0-9._-]*, unique. Renaming a destination orphans its
	// pending deliveries.
	Name string `yaml:"name"`
	// Workspaces it serves: names, "*" for all, "" for actions without a
	// workspace. Required.
	Workspaces []string `yaml:"workspaces"`
	// Actions it takes: flow, brief; default every type its channel
	// carries (a webhook both, email and slack briefs).
	Actions []string `yaml:"actions"`

	// Exactly one channel.
	Webhook *WebhookConfig `yaml:"webhook"`
	Email   *EmailConfig   `yaml:"email"`
	Slack   *SlackConfig   `yaml:"slack"`

	// Timeout bounds one attempt (connect, TLS, request, response); default
	// 10s.
	Timeout time.Duration `yaml:"timeout"`
	// MaxAge is how long an action is tried before it fails and is
	// dead-lettered, from when it was scheduled; default 24h.
	MaxAge time.Duration `yaml:"max_age"`
	// Concurrency is the most attempts in flight to this destination from
	// one instance; default 16.
	Concurrency int `yaml:"concurrency"`
	// DryRun records what would be sent (a dry_run outcome) and sends
	// nothing.
	DryRun bool        `yaml:"dry_run"`
	Retry  RetryConfig `yaml:"retry"`
}

// RetryConfig is the backoff between attempts: from Initial (default 1s),
// doubling up to Max (default 5m), each wait drawn from [d/2, d]; a
// Retry-After longer than that is honoured.
type RetryConfig struct {
	Initial time.Duration `yaml:"initial"`
	Max     time.Duration `yaml:"max"`
}

// WebhookConfig is a Standard Webhooks endpoint.
type WebhookConfig struct {
	At *yaml.Node `yaml:"-"`
	// URL is called with POST; https, or http to a loopback address.
	URL string `yaml:"url"`
	// SecretEnv names the environment variable holding the signing
	// secret(s): whsec_BASE64 or raw, several separated by spaces while
	// rotating. Required.
	SecretEnv string `yaml:"secret_env"`
	// Headers are extra request headers (never secrets: they are logged
	// with the config).
	Headers map[string]string `yaml:"headers"`
	// CAFile holds PEM CAs that verify the server; default system roots.
	CAFile string `yaml:"ca_file"`
}

// EmailConfig sends briefs by SMTP.
type EmailConfig struct {
	At   *yaml.Node `yaml:"-"`
	SMTP SMTPConfig `yaml:"smtp"`
	// From is the sender, "Name <addr>" or "addr". Required.
	From string `yaml:"from"`
	// Directory resolves user:ID recipients to addresses; without it they
	// are skipped.
	Directory *DirectoryConfig `yaml:"directory"`
}

// SMTPConfig is the SMTP server of an email destination.
type SMTPConfig struct {
	At   *yaml.Node `yaml:"-"`
	Host string     `yaml:"host"`
	// Port; default 587 (starttls), 465 (tls), 25 (none).
	Port int `yaml:"port"`
	// TLS is starttls (default: required, never skipped), tls (implicit,
	// port 465), or none (only to a loopback relay).
	TLS      string `yaml:"tls"`
	Username string `yaml:"username"`
	// PasswordEnv names the environment variable of the password (AUTH
	// PLAIN, only over TLS).
	PasswordEnv string `yaml:"password_env"`
	CAFile      string `yaml:"ca_file"`
}

// DirectoryConfig resolves user ids to email addresses: a YAML or CSV
// file, or an HTTP lookup.
type DirectoryConfig struct {
	At *yaml.Node `yaml:"-"`
	// File is a .yaml/.yml or .csv file (docs/delivery.md), read at each
	// (re)load.
	File string `yaml:"file"`
	// URL is called with GET for each user not cached; {workspace} and
	// {id} are replaced (path-escaped). A 200 with {"email": "..."} is an
	// address, a 404 an unknown user.
	URL      string `yaml:"url"`
	TokenEnv string `yaml:"token_env"`
	// CacheTTL is how long a looked-up address is kept; default 10m (an
	// unknown user: a tenth of it).
	CacheTTL time.Duration `yaml:"cache_ttl"`
	CAFile   string        `yaml:"ca_file"`
}

// SlackConfig posts briefs to a Slack-compatible incoming webhook.
type SlackConfig struct {
	At *yaml.Node `yaml:"-"`
	// URLEnv names the environment variable holding the webhook URL (it
	// is a secret). Required.
	URLEnv string `yaml:"url_env"`
	CAFile string `yaml:"ca_file"`
}

// BriefConfig is how briefs are written (package delivery/brief).
type BriefConfig struct {
	At *yaml.Node `yaml:"-"`
	// Template is a Go text/template file for the prompt (with AI) or the
	// text (without); default the built-in one.
	Template string `yaml:"template"`
	// System is the instruction sent as the AI's system message; default
	// the built-in one.
	System string `yaml:"system"`
	// MaxValueBytes caps each field value; default 500. MaxDataBytes caps
	// all the record data of one brief; default 8 KiB.
	MaxValueBytes int       `yaml:"max_value_bytes"`
	MaxDataBytes  int       `yaml:"max_data_bytes"`
	AI            *AIConfig `yaml:"ai"`
}

// AIConfig is an OpenAI-compatible chat completions endpoint.
type AIConfig struct {
	At *yaml.Node `yaml:"-"`
	// BaseURL is called as BaseURL + "/chat/completions", e.g.
	// https://api.openai.com/v1.
	BaseURL   string `yaml:"base_url"`
	Model     string `yaml:"model"`
	APIKeyEnv string `yaml:"api_key_env"`
	// Timeout bounds one request; default 30s. Attempts: default 3.
	Timeout   time.Duration `yaml:"timeout"`
	Attempts  int           `yaml:"attempts"`
	MaxTokens int           `yaml:"max_tokens"`
	CAFile    string        `yaml:"ca_file"`
}

// FieldRule says which record fields may leave whenthen (in briefs,
// prompts and webhook payloads) for the workspaces it names; the first
// rule naming an action's workspace (or "*") applies. Allow maps an object
// to its field names, "standard" standing for the standard fields; an
// object not listed, or a workspace no rule names, sends the standard
// fields only.
type FieldRule struct {
	At         *yaml.Node          `yaml:"-"`
	Workspaces []string            `yaml:"workspaces"`
	Allow      map[string][]string `yaml:"allow"`
}

var destNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)

// ParseConfig reads the delivery part of a config file: the top-level keys
// destinations, brief and fields; the keys in others (the connection
// settings, read by the command) are skipped. Every error is reported,
// each as FILE:LINE:COL: message, in a yamlfile.ErrorList.
func ParseConfig(name string, data []byte, others ...string) (*Config, error) {
	root, perr := yamlfile.Parse(name, data)
	if perr != nil {
		return nil, yamlfile.ErrorList{perr}
	}
	c := &Config{}
	d := &decoder{file: name}
	if root != nil {
		if root.Kind != yaml.MappingNode {
			d.errorf(root, "the config must be a mapping")
			return nil, d.errs
		}
		own := map[string]reflect.Value{
			"destinations": reflect.ValueOf(&c.Destinations).Elem(),
			"brief":        reflect.ValueOf(&c.Brief).Elem(),
			"fields":       reflect.ValueOf(&c.Fields).Elem(),
		}
		for i := 0; i+1 < len(root.Content); i += 2 {
			k, v := root.Content[i], root.Content[i+1]
			if dst, ok := own[k.Value]; ok {
				d.decode(v, dst, k.Value)
				continue
			}
			if !slices.Contains(others, k.Value) {
				d.errorf(k, "unknown key %q (want destinations, brief, fields or %s)", k.Value, strings.Join(others, ", "))
			}
		}
	}
	c.check(d)
	if len(d.errs) > 0 {
		d.errs.Sort()
		return nil, d.errs
	}
	return c, nil
}

// check validates what decoding does not: names, channels, URLs, the
// values of each setting.
func (c *Config) check(d *decoder) {
	names := map[string]bool{}
	for i := range c.Destinations {
		dst := &c.Destinations[i]
		at := dst.At
		what := "destination"
		if dst.Name != "" {
			what = "destination " + dst.Name
		}
		switch {
		case dst.Name == "":
			d.errorf(at, "%s: name is required", what)
		case !destNameRE.MatchString(dst.Name):
			d.errorf(at, "%s: invalid name (want [a-z0-9][a-z0-9._-]*)", what)
		case names[dst.Name]:
			d.errorf(at, "%s: the name is used twice", what)
		}
		names[dst.Name] = true
		if len(dst.Workspaces) == 0 {
			d.errorf(at, "%s: workspaces is required (names, or \"*\" for all)", what)
		}
		channels := 0
		var carries []string
		if dst.Webhook != nil {
			channels++
			carries = []string{actions.TypeFlow, actions.TypeBrief}
			c.checkWebhook(d, what, dst.Webhook)
		}
		if dst.Email != nil {
			channels++
			carries = []string{actions.TypeBrief}
			checkEmail(d, what, dst.Email)
		}
		if dst.Slack != nil {
			channels++
			carries = []string{actions.TypeBrief}
			if dst.Slack.URLEnv == "" {
				d.errorf(dst.Slack.At, "%s: slack.url_env is required (the webhook URL is a secret)", what)
			}
		}
		if channels != 1 {
			d.errorf(at, "%s: want exactly one of webhook, email, slack", what)
		}
		for _, a := range dst.Actions {
			if a != actions.TypeFlow && a != actions.TypeBrief {
				d.errorf(at, "%s: unknown action type %q (want flow or brief)", what, a)
			} else if channels == 1 && !slices.Contains(carries, a) {
				d.errorf(at, "%s: an %s destination cannot carry %s actions", what, channelName(dst), a)
			}
		}
		if len(dst.Actions) == 0 {
			dst.Actions = carries
		}
		if dst.Concurrency < 0 || dst.Concurrency > 1024 {
			d.errorf(at, "%s: concurrency %d: want 1 to 1024", what, dst.Concurrency)
		}
		if dst.Timeout < 0 || dst.Timeout > 10*time.Minute {
			d.errorf(at, "%s: timeout %v: want up to 10m", what, dst.Timeout)
		}
		if dst.Retry.Initial > 0 && dst.Retry.Max > 0 && dst.Retry.Max < dst.Retry.Initial {
			d.errorf(at, "%s: retry.max %v is below retry.initial %v", what, dst.Retry.Max, dst.Retry.Initial)
		}
		dst.defaults()
	}
	if b := c.Brief; b.MaxValueBytes < 0 || b.MaxDataBytes < 0 {
		d.errorf(b.At, "brief: max_value_bytes and max_data_bytes must not be negative")
	}
	if ai := c.Brief.AI; ai != nil {
		if u, err := url.Parse(ai.BaseURL); err != nil || ai.BaseURL == "" || !okScheme(u) {
			d.errorf(ai.At, "brief.ai.base_url %q: want an https URL (http only to a loopback address)", ai.BaseURL)
		}
		if ai.Model == "" {
			d.errorf(ai.At, "brief.ai.model is required")
		}
		if ai.Attempts < 0 || ai.MaxTokens < 0 {
			d.errorf(ai.At, "brief.ai.attempts and max_tokens must not be negative")
		}
	}
	for _, r := range c.Fields {
		if len(r.Workspaces) == 0 {
			d.errorf(r.At, "fields: workspaces is required")
		}
		for obj := range r.Allow {
			if !slices.Contains(crm.CRMObjects, obj) {
				d.errorf(r.At, "fields: unknown object %q (want one of %s)", obj, strings.Join(crm.CRMObjects, ", "))
			}
		}
	}
}

func (c *Config) checkWebhook(d *decoder, what string, w *WebhookConfig) {
	u, err := url.Parse(w.URL)
	switch {
	case w.URL == "":
		d.errorf(w.At, "%s: webhook.url is required", what)
	case err != nil || u.Host == "" || !okScheme(u):
		d.errorf(w.At, "%s: webhook.url: want an https URL (http only to a loopback address)", what)
	case u.User != nil:
		d.errorf(w.At, "%s: webhook.url must not hold credentials", what)
	}
	if w.SecretEnv == "" {
		d.errorf(w.At, "%s: webhook.secret_env is required (the signing secret, from the environment)", what)
	}
	for k := range w.Headers {
		switch strings.ToLower(k) {
		case "webhook-id", "webhook-timestamp", "webhook-signature", "content-type", "content-length", "host":
			d.errorf(w.At, "%s: webhook.headers: %s is set by whenthen", what, k)
		}
	}
}

func checkEmail(d *decoder, what string, e *EmailConfig) {
	s := &e.SMTP
	if s.Host == "" {
		d.errorf(e.At, "%s: email.smtp.host is required", what)
	}
	switch s.TLS {
	case "", "starttls", "tls":
	case "none":
		if !isLoopbackHost(s.Host) {
			d.errorf(s.At, "%s: email.smtp.tls none is only allowed to a loopback relay", what)
		}
		if s.Username != "" {
			d.errorf(s.At, "%s: email.smtp: no authentication without TLS", what)
		}
	default:
		d.errorf(s.At, "%s: email.smtp.tls %q: want starttls, tls or none", what, s.TLS)
	}
	if (s.Username == "") != (s.PasswordEnv == "") {
		d.errorf(s.At, "%s: email.smtp: give both username and password_env, or neither", what)
	}
	if s.Port < 0 || s.Port > 65535 {
		d.errorf(s.At, "%s: email.smtp.port %d", what, s.Port)
	}
	if e.From == "" {
		d.errorf(e.At, "%s: email.from is required", what)
	}
	if dir := e.Directory; dir != nil {
		if (dir.File == "") == (dir.URL == "") {
			d.errorf(dir.At, "%s: email.directory: want exactly one of file and url", what)
		}
		if dir.URL != "" {
			if u, err := url.Parse(strings.NewReplacer("{workspace}", "w", "{id}", "i").Replace(dir.URL)); err != nil || !okScheme(u) || u.Host == "" {
				d.errorf(dir.At, "%s: email.directory.url: want an https URL (http only to a loopback address)", what)
			}
			if !strings.Contains(dir.URL, "{id}") {
				d.errorf(dir.At, "%s: email.directory.url must hold {id}", what)
			}
		}
	}
}

func channelName(d *Destination) string {
	switch {
	case d.Webhook != nil:
		return "webhook"
	case d.Email != nil:
		return "email"
	}
	return "slack"
}

func (d *Destination) defaults() {
	if d.Timeout == 0 {
		d.Timeout = DefaultTimeout
	}
	if d.MaxAge == 0 {
		d.MaxAge = DefaultMaxAge
	}
	if d.Concurrency == 0 {
		d.Concurrency = DefaultConcurrency
	}
	if d.Retry.Initial == 0 {
		d.Retry.Initial = DefaultRetryInitial
	}
	if d.Retry.Max == 0 {
		d.Retry.Max = max(DefaultRetryMax, d.Retry.Initial)
	}
	if e := d.Email; e != nil {
		if e.SMTP.TLS == "" {
			e.SMTP.TLS = "starttls"
		}
		if e.SMTP.Port == 0 {
			e.SMTP.Port = map[string]int{"starttls": 587, "tls": 465, "none": 25}[e.SMTP.TLS]
		}
	}
}

// okScheme accepts https, and http to a loopback host (tests, a local
// relay or sidecar).
func okScheme(u *url.URL) bool {
	return u.Scheme == "https" || (u.Scheme == "http" && isLoopbackHost(u.Hostname()))
}

func isLoopbackHost(h string) bool {
	return h == "localhost" || strings.HasPrefix(h, "127.") || h == "::1" || h == "[::1]"
}

// readConfigFile reads and parses a config file.
func readConfigFile(path string, others []string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return ParseConfig(path, data, others...)
}

// CheckConfig reads and compiles the delivery config of path as the
// service does (secrets from env, the files it names, the schema of
// schemaFile or the standard one) and returns how many destinations it
// has, or every error.
func CheckConfig(path string, others []string, schemaFile string, env func(string) string) (int, error) {
	schema := crm.DefaultSchema()
	if schemaFile != "" {
		var err error
		if schema, err = crm.LoadSchema(schemaFile); err != nil {
			return 0, fmt.Errorf("schema: %w", err)
		}
	}
	c, err := readConfigFile(path, others)
	if err != nil {
		return 0, err
	}
	p, err := compile(c, path, schema, env)
	if err != nil {
		return 0, err
	}
	return len(p.dests), nil
}
