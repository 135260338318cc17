//go:build linux

package deploy

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/whenthen/whenthen/delivery"
	"github.com/whenthen/whenthen/history"
	"github.com/whenthen/whenthen/internal/service"
)

// The services' own listen defaults and health endpoints (README,
// docs/operations.md); TestMetricsServed checks the endpoints answer.
var (
	defaultListen   = map[string]string{"run": service.DefaultMetricsListen, "deliver": delivery.DefaultMetricsListen, "history": history.DefaultListen}
	defaultShutdown = map[string]time.Duration{"run": service.DefaultShutdownTimeout, "deliver": delivery.DefaultShutdownTimeout, "history": history.DefaultShutdownTimeout}
	probePaths      = map[string]string{"liveness": "/healthz", "readiness": "/readyz"}
)

// k8s is the part of a manifest the test reads.
type k8s struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name   string            `yaml:"name"`
		Labels map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Data       map[string]string `yaml:"data"`
	StringData map[string]string `yaml:"stringData"`
	Spec       struct {
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		MaxUnavailable any `yaml:"maxUnavailable"`
		Template       struct {
			Metadata struct {
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"metadata"`
			Spec struct {
				TerminationGracePeriodSeconds int `yaml:"terminationGracePeriodSeconds"`
				SecurityContext               struct {
					RunAsNonRoot bool `yaml:"runAsNonRoot"`
					RunAsUser    int  `yaml:"runAsUser"`
				} `yaml:"securityContext"`
				Containers []container `yaml:"containers"`
				Volumes    []struct {
					Name      string `yaml:"name"`
					ConfigMap struct {
						Name string `yaml:"name"`
					} `yaml:"configMap"`
				} `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type container struct {
	Args  []string `yaml:"args"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	Env []struct {
		Name      string `yaml:"name"`
		ValueFrom struct {
			SecretKeyRef *struct {
				Name string `yaml:"name"`
				Key  string `yaml:"key"`
			} `yaml:"secretKeyRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	LivenessProbe  *probe `yaml:"livenessProbe"`
	ReadinessProbe *probe `yaml:"readinessProbe"`
	VolumeMounts   []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
	} `yaml:"volumeMounts"`
}

type probe struct {
	HTTPGet struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"`
	} `yaml:"httpGet"`
}

func readManifests(t *testing.T) []k8s {
	t.Helper()
	var kust struct {
		Resources []string `yaml:"resources"`
	}
	readYAML(t, "kubernetes/kustomization.yaml", &kust)
	var out []k8s
	for _, f := range append(kust.Resources, "secret.example.yaml") {
		b, err := os.ReadFile(filepath.Join("kubernetes", f))
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			var m k8s
			if err := dec.Decode(&m); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			out = append(out, m)
		}
	}
	return out
}

// TestKubernetes checks the manifests against the services: each
// Deployment's probes are /healthz and /readyz on the port its config
// listens on, which is the container's and Prometheus' port; it runs as
// user 65532; its grace period outlasts its shutdown_timeout; every
// Secret key it reads is in secret.example.yaml; a PodDisruptionBudget
// selects its pods; and the ConfigMaps are valid for the binary (`whenthen
// check` on the rules, `whenthen deliver --check` on the delivery config).
func TestKubernetes(t *testing.T) {
	ms := readManifests(t)
	cms := map[string]map[string]string{}
	secretKeys := map[string]bool{}
	var pdbs []k8s
	for _, m := range ms {
		switch m.Kind {
		case "ConfigMap":
			cms[m.Metadata.Name] = m.Data
		case "Secret":
			for k := range m.StringData {
				secretKeys[m.Metadata.Name+"/"+k] = true
			}
		case "PodDisruptionBudget":
			pdbs = append(pdbs, m)
		}
	}
	seen := map[string]bool{}
	for _, m := range ms {
		if m.Kind != "Deployment" {
			continue
		}
		t.Run(m.Metadata.Name, func(t *testing.T) {
			ps := m.Spec.Template.Spec
			if len(ps.Containers) != 1 {
				t.Fatalf("%d containers, want 1", len(ps.Containers))
			}
			c := ps.Containers[0]
			if len(c.Args) < 3 || c.Args[1] != "--config" {
				t.Fatalf("args %v, want SERVICE --config FILE", c.Args)
			}
			svc := c.Args[0]
			seen[svc] = true
			// The config file, from the ConfigMap mounted at its directory.
			mounts := map[string]string{} // mount path → ConfigMap
			vols := map[string]string{}
			for _, v := range ps.Volumes {
				vols[v.Name] = v.ConfigMap.Name
			}
			for _, vm := range c.VolumeMounts {
				mounts[vm.MountPath] = vols[vm.Name]
			}
			cfgPath := c.Args[2]
			cm, ok := cms[mounts[filepath.Dir(cfgPath)]]
			if !ok || cm[filepath.Base(cfgPath)] == "" {
				t.Fatalf("%s is not in a mounted ConfigMap", cfgPath)
			}
			var cfg struct {
				Metrics         struct{ Listen string } `yaml:"metrics"`
				History         struct{ Listen string } `yaml:"history"`
				Rules           []string                `yaml:"rules"`
				ShutdownTimeout string                  `yaml:"shutdown_timeout"`
			}
			if err := yaml.Unmarshal([]byte(cm[filepath.Base(cfgPath)]), &cfg); err != nil {
				t.Fatalf("%s: %v", cfgPath, err)
			}
			listen := cfg.Metrics.Listen
			if svc == "history" {
				listen = cfg.History.Listen
			}
			if listen == "" {
				listen = defaultListen[svc]
			}
			_, portStr, _ := strings.Cut(listen, ":")
			port, _ := strconv.Atoi(portStr)
			if port == 0 {
				t.Fatalf("listen %q has no port", listen)
			}
			named := map[string]int{}
			for _, p := range c.Ports {
				named[p.Name] = p.ContainerPort
			}
			for kind, pr := range map[string]*probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
				if pr == nil {
					t.Errorf("no %s probe", kind)
					continue
				}
				if pr.HTTPGet.Path != probePaths[kind] {
					t.Errorf("%s probe path %q, want %q", kind, pr.HTTPGet.Path, probePaths[kind])
				}
				pp, isName := pr.HTTPGet.Port.(string)
				got := named[pp]
				if !isName {
					got, _ = pr.HTTPGet.Port.(int)
				}
				if got != port {
					t.Errorf("%s probe port %v is %d, the service listens on %d", kind, pr.HTTPGet.Port, got, port)
				}
			}
			if a := m.Spec.Template.Metadata.Annotations["prometheus.io/port"]; a != strconv.Itoa(port) {
				t.Errorf("prometheus.io/port %q, the service listens on %d", a, port)
			}
			if sc := ps.SecurityContext; !sc.RunAsNonRoot || sc.RunAsUser != 65532 {
				t.Errorf("pod security context %+v, want runAsNonRoot and user 65532 (the image's)", sc)
			}
			shutdown := defaultShutdown[svc]
			if cfg.ShutdownTimeout != "" {
				d, err := time.ParseDuration(cfg.ShutdownTimeout)
				if err != nil {
					t.Fatal(err)
				}
				shutdown = d
			}
			if g := time.Duration(ps.TerminationGracePeriodSeconds) * time.Second; g <= shutdown {
				t.Errorf("terminationGracePeriodSeconds %v is not longer than shutdown_timeout %v", g, shutdown)
			}
			for _, e := range c.Env {
				if r := e.ValueFrom.SecretKeyRef; r != nil && !secretKeys[r.Name+"/"+r.Key] {
					t.Errorf("env %s reads Secret %s key %s, which secret.example.yaml lacks", e.Name, r.Name, r.Key)
				}
			}
			pdb := false
			for _, p := range pdbs {
				match := len(p.Spec.Selector.MatchLabels) > 0
				for k, v := range p.Spec.Selector.MatchLabels {
					match = match && m.Spec.Template.Metadata.Labels[k] == v
				}
				pdb = pdb || match
			}
			if !pdb {
				t.Error("no PodDisruptionBudget selects its pods")
			}
			if m.Spec.Selector.MatchLabels["app.kubernetes.io/name"] != "whenthen-"+svc || m.Spec.Template.Metadata.Labels["app.kubernetes.io/name"] != "whenthen-"+svc {
				t.Errorf("app.kubernetes.io/name is not whenthen-%s (the alerts' job)", svc)
			}

			// The ConfigMaps through the binary.
			dir := t.TempDir()
			for _, r := range cfg.Rules {
				files, ok := cms[mounts[r]]
				if !ok {
					t.Errorf("rules %s are not a mounted ConfigMap", r)
					continue
				}
				rdir := filepath.Join(dir, "rules")
				if err := os.MkdirAll(rdir, 0o755); err != nil {
					t.Fatal(err)
				}
				for name, body := range files {
					if err := os.WriteFile(filepath.Join(rdir, name), []byte(body), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				if out, err := exec.Command(staticBinary(t), "check", rdir).CombinedOutput(); err != nil {
					t.Errorf("whenthen check on the rules ConfigMap: %v\n%s", err, out)
				}
			}
			if svc == "deliver" {
				path := filepath.Join(dir, "deliver.yaml")
				if err := os.WriteFile(path, []byte(cm[filepath.Base(cfgPath)]), 0o644); err != nil {
					t.Fatal(err)
				}
				cmd := exec.Command(staticBinary(t), "deliver", "--config", path, "--check")
				cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "CRM_HOOK_SECRET=" + hookSecret, "WHENTHEN_REDIS_URL=redis://127.0.0.1:6379/0"}
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Errorf("whenthen deliver --check on the ConfigMap: %v\n%s", err, out)
				}
			}
		})
	}
	for svc := range defaultListen {
		if !seen[svc] {
			t.Errorf("no Deployment runs whenthen %s", svc)
		}
	}
}
