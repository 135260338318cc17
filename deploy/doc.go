// Package deploy holds the SRE kit, which is not Go: the container image
// (Dockerfile), Kubernetes manifests (kubernetes/), Prometheus alerting
// rules and their unit tests (prometheus/) and a Grafana dashboard
// (grafana/). Its tests check them against the real thing: promtool checks
// and unit-tests the rules, the Dockerfile's build command gives a static
// binary, the manifests' probes and ports are the services' own, and every
// metric an alert or a panel names is served by the service it reads.
package deploy
