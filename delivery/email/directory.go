package email

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/mail"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/whenthen/whenthen/delivery/webhook"
)

// Directory resolves a user id of a workspace to an email address.
type Directory interface {
	// Lookup returns the user's address; found is false for an unknown
	// user. An error means the directory could not say (retry later).
	Lookup(ctx context.Context, workspace, id string) (addr string, found bool, err error)
}

// FileDirectory is a directory read from a file once.
type FileDirectory struct {
	// byKey maps "workspace\x00id" (workspace "" for any) to an address.
	byKey map[string]string
}

// LoadFile reads a directory file: YAML (.yaml, .yml)
//
//	users:
//	  - {id: u-7, email: ana@acme.example, workspace: acme}
//	  - {id: u-42, email: bo@example.com}          # any workspace
//
// or CSV (.csv) with the header id,email[,workspace]. An entry with a
// workspace wins over one without.
func LoadFile(path string) (*FileDirectory, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("directory: %w", err)
	}
	type entry struct{ id, email, ws string }
	var entries []entry
	var lines []int
	switch strings.ToLower(filepath.Ext(path)) {
	case ".yaml", ".yml":
		var doc struct {
			Users []struct {
				ID        string `yaml:"id"`
				Email     string `yaml:"email"`
				Workspace string `yaml:"workspace"`
			} `yaml:"users"`
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("directory %s: %w", path, err)
		}
		for i, u := range doc.Users {
			entries = append(entries, entry{u.ID, u.Email, u.Workspace})
			lines = append(lines, i+1)
		}
	case ".csv":
		r := csv.NewReader(bytes.NewReader(data))
		r.FieldsPerRecord = -1
		r.TrimLeadingSpace = true
		recs, err := r.ReadAll()
		if err != nil {
			return nil, fmt.Errorf("directory %s: %w", path, err)
		}
		if len(recs) == 0 || len(recs[0]) < 2 || recs[0][0] != "id" || recs[0][1] != "email" || (len(recs[0]) > 2 && recs[0][2] != "workspace") {
			return nil, fmt.Errorf("directory %s:1: want the header id,email or id,email,workspace", path)
		}
		for i, rec := range recs[1:] {
			if len(rec) != len(recs[0]) {
				return nil, fmt.Errorf("directory %s:%d: %d columns, want %d", path, i+2, len(rec), len(recs[0]))
			}
			e := entry{id: rec[0], email: rec[1]}
			if len(rec) > 2 {
				e.ws = rec[2]
			}
			entries = append(entries, e)
			lines = append(lines, i+2)
		}
	default:
		return nil, fmt.Errorf("directory %s: want a .yaml, .yml or .csv file", path)
	}
	d := &FileDirectory{byKey: make(map[string]string, len(entries))}
	var errs []error
	for i, e := range entries {
		where := fmt.Sprintf("directory %s: entry %d", path, lines[i])
		if e.id == "" {
			errs = append(errs, fmt.Errorf("%s: no id", where))
			continue
		}
		if a, err := mail.ParseAddress(e.email); err != nil || a.Name != "" {
			errs = append(errs, fmt.Errorf("%s (%s): invalid email address", where, e.id))
			continue
		}
		k := e.ws + "\x00" + e.id
		if _, dup := d.byKey[k]; dup {
			errs = append(errs, fmt.Errorf("%s: user %s listed twice", where, e.id))
			continue
		}
		d.byKey[k] = e.email
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return d, nil
}

// Len is the number of entries.
func (d *FileDirectory) Len() int { return len(d.byKey) }

// Lookup implements Directory.
func (d *FileDirectory) Lookup(_ context.Context, workspace, id string) (string, bool, error) {
	if a, ok := d.byKey[workspace+"\x00"+id]; ok {
		return a, true, nil
	}
	a, ok := d.byKey["\x00"+id]
	return a, ok, nil
}

// HTTPOptions configure an [HTTPDirectory].
type HTTPOptions struct {
	// URL is called with GET; {workspace} and {id} are replaced,
	// path-escaped.
	URL string
	// Token is sent as "Authorization: Bearer TOKEN" when set.
	Token string
	// TTL is how long an address is cached; default 10m. An unknown user
	// is cached for a tenth of it.
	TTL time.Duration
	// Timeout bounds a lookup; default 5s.
	Timeout time.Duration
	// MaxEntries bounds the cache; default 10,000 (when full, expired
	// entries go, then the cache is emptied).
	MaxEntries int
	Client     *webhook.Client
	Now        func() time.Time
}

// HTTPDirectory looks users up over HTTP: a 200 with {"email": "..."} is
// the address, a 404 an unknown user, anything else an error.
type HTTPDirectory struct {
	o     HTTPOptions
	mu    sync.Mutex
	cache map[string]cached
}

type cached struct {
	addr  string
	found bool
	until time.Time
}

// NewHTTP returns an HTTP directory.
func NewHTTP(o HTTPOptions) (*HTTPDirectory, error) {
	if !strings.Contains(o.URL, "{id}") {
		return nil, errors.New("directory: the URL must hold {id}")
	}
	if o.TTL <= 0 {
		o.TTL = 10 * time.Minute
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if o.MaxEntries <= 0 {
		o.MaxEntries = 10_000
	}
	if o.Client == nil {
		o.Client = webhook.NewClient(webhook.ClientOptions{})
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &HTTPDirectory{o: o, cache: map[string]cached{}}, nil
}

// Lookup implements Directory.
func (d *HTTPDirectory) Lookup(ctx context.Context, workspace, id string) (string, bool, error) {
	k := workspace + "\x00" + id
	now := d.o.Now()
	d.mu.Lock()
	c, ok := d.cache[k]
	d.mu.Unlock()
	if ok && now.Before(c.until) {
		return c.addr, c.found, nil
	}
	u := strings.NewReplacer("{workspace}", url.PathEscape(workspace), "{id}", url.PathEscape(id)).Replace(d.o.URL)
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return "", false, fmt.Errorf("directory: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	if d.o.Token != "" {
		req.Header.Set("Authorization", "Bearer "+d.o.Token)
	}
	lctx, cancel := context.WithTimeout(ctx, d.o.Timeout)
	defer cancel()
	r := d.o.Client.Do(lctx, req)
	switch {
	case r.Status == http.StatusNotFound:
		d.put(k, cached{until: now.Add(d.o.TTL / 10)})
		return "", false, nil
	case !r.OK():
		return "", false, fmt.Errorf("directory lookup: %w", r.Err)
	}
	var res struct {
		Email string `json:"email"`
	}
	if err := json.Unmarshal(r.Body, &res); err != nil {
		return "", false, errors.New("directory lookup: the answer is not {\"email\": ...}")
	}
	if a, err := mail.ParseAddress(res.Email); err != nil || a.Name != "" {
		d.put(k, cached{until: now.Add(d.o.TTL / 10)})
		return "", false, nil
	}
	d.put(k, cached{addr: res.Email, found: true, until: now.Add(d.o.TTL)})
	return res.Email, true, nil
}

func (d *HTTPDirectory) put(k string, c cached) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.cache) >= d.o.MaxEntries {
		now := d.o.Now()
		for key, v := range d.cache {
			if !now.Before(v.until) {
				delete(d.cache, key)
			}
		}
		if len(d.cache) >= d.o.MaxEntries {
			clear(d.cache)
		}
	}
	d.cache[k] = c
}
