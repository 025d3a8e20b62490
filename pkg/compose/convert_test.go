package compose

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"

	"github.com/microctl/microctl/internal/golden"
)

// goldenEnv is the environment the golden conversions are interpolated with.
var goldenEnv = []string{"GREETING=hi", "API_TOKEN=tok", "HOME=/root"}

type goldenObject struct {
	Key      string            `json:"key"`
	Name     string            `json:"name"`
	Fixed    bool              `json:"fixed,omitempty"`
	External bool              `json:"external,omitempty"`
	Data     string            `json:"data,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
}

type goldenService struct {
	Spec      swarm.ServiceSpec `json:"spec"`
	DependsOn []Dependency      `json:"depends_on,omitempty"`
}

type goldenStack struct {
	Stack    string                           `json:"stack"`
	Services map[string]goldenService         `json:"services"`
	Networks map[string]network.CreateOptions `json:"networks,omitempty"`
	External []string                         `json:"external_networks,omitempty"`
	Configs  []goldenObject                   `json:"configs,omitempty"`
	Secrets  []goldenObject                   `json:"secrets,omitempty"`
	Order    []string                         `json:"order"`
	Warnings []string                         `json:"warnings,omitempty"`
}

func objectsForGolden(objs []Object) []goldenObject {
	var out []goldenObject
	for _, o := range objs {
		out = append(out, goldenObject{Key: o.Key, Name: o.Name, Fixed: o.Fixed, External: o.External, Data: string(o.Data), Labels: o.Labels})
	}
	return out
}

func convertFile(t *testing.T, files ...string) (*Stack, error) {
	t.Helper()
	p, warnings, err := LoadCompose(context.Background(), LoadOptions{Files: files, Stack: "demo", Env: goldenEnv})
	if err != nil {
		return nil, err
	}
	st, err := Convert(p, ConvertOptions{APIVersion: "1.41"})
	if err != nil {
		return nil, err
	}
	st.Warnings = append(warnings, st.Warnings...)
	return st, nil
}

// TestConvertGolden converts every testdata/convert/*.yml and compares the
// ServiceSpecs (and networks, configs, secrets, warnings) with the .json
// next to it (internal/golden). Run with -update to rewrite them after a
// deliberate change.
func TestConvertGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/convert/*.yml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	abs, _ := filepath.Abs("testdata/convert")
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".yml"), func(t *testing.T) {
			st, err := convertFile(t, f)
			if err != nil {
				t.Fatal(err)
			}
			order, err := Order(st.Services)
			if err != nil {
				t.Fatal(err)
			}
			g := goldenStack{Stack: st.Name, Services: map[string]goldenService{}, External: st.External,
				Configs: objectsForGolden(st.Configs), Secrets: objectsForGolden(st.Secrets), Order: order, Warnings: st.Warnings}
			for _, s := range st.Services {
				g.Services[s.Name] = goldenService{Spec: s.Spec, DependsOn: s.DependsOn}
			}
			if len(st.Networks) > 0 {
				g.Networks = map[string]network.CreateOptions{}
				for _, n := range st.Networks {
					g.Networks[n.Name] = n.Options
				}
			}
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetIndent("", "  ")
			enc.SetEscapeHTML(false)
			if err := enc.Encode(g); err != nil {
				t.Fatal(err)
			}
			got := bytes.ReplaceAll(buf.Bytes(), []byte(abs), []byte("<testdata>"))
			golden.Assert(t, "convert/"+strings.TrimSuffix(filepath.Base(f), ".yml")+".json", got)
		})
	}
}

func writeCompose(t *testing.T, content string) string {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "compose.yml")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestLoadErrors: every kind of bad file gives one clear line that names
// what is wrong.
func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name, content string
		want          []string
	}{
		{"yaml syntax", "services:\n  a:\n    image: x\n    ports: [ \"80:80\"\n  b: [\n", []string{"compose.yml:5: invalid YAML: did not find expected ',' or ']' (while parsing a flow sequence at line 4, column 12)"}},
		{"tab indentation", "services:\n\ta:\n", []string{"compose.yml:2: invalid YAML: found character that cannot start any token (while scanning for the next token)"}},
		{"mapping in a value", "services:\n  a:\n    image: x: y\n", []string{"compose.yml:3: invalid YAML: mapping values are not allowed in this context"}},
		{"bad indentation", "services:\n  a:\n    image: x\n   bad: [\n", []string{"compose.yml:4: invalid YAML: did not find expected key (while parsing a block mapping at line 2, column 3)"}},
		{"first line", "- a\nb: c\n", []string{"compose.yml:2: invalid YAML"}},
		{"unknown field", "services:\n  a:\n    image: x\n    replicas: 3\n", []string{"services.a.replicas", "not allowed"}},
		{"wrong type", "services:\n  a:\n    image: x\n    ports: 80\n", []string{"services.a.ports", "must be a array"}},
		{"required variable", "services:\n  a:\n    image: ${IMG:?set IMG to the image}\n", []string{"required variable IMG is missing a value: set IMG to the image"}},
		{"undefined network", "services:\n  a:\n    image: x\n    networks: [nope]\n", []string{`service "a" refers to undefined network nope`}},
		{"undefined service in depends_on", "services:\n  a:\n    image: x\n    depends_on: [zz]\n", []string{`depends on undefined service "zz"`}},
		{"bad replicas", "services:\n  a:\n    image: x\n    deploy:\n      replicas: lots\n", []string{"services.a.deploy.replicas"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := convertFile(t, writeCompose(t, tt.content))
			if err == nil {
				t.Fatal("loaded without error")
			}
			var ce *ComposeError
			if !errors.As(err, &ce) {
				t.Errorf("error %T is not a ComposeError: %v", err, err)
			}
			msg := err.Error()
			t.Logf("%s: %s", tt.name, msg)
			if strings.Contains(msg, "\n") {
				t.Errorf("error spans lines: %q", msg)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q lacks %q", msg, w)
				}
			}
		})
	}
	t.Run("bad stack name", func(t *testing.T) {
		_, _, err := LoadCompose(context.Background(), LoadOptions{Files: []string{writeCompose(t, "services:\n  a:\n    image: x\n")}, Stack: "Bad.Name"})
		if err == nil || !strings.Contains(err.Error(), "Bad.Name") {
			t.Errorf("got %v", err)
		}
	})
	t.Run("missing file", func(t *testing.T) {
		_, err := convertFile(t, filepath.Join(t.TempDir(), "nope.yml"))
		var ce *ComposeError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), "nope.yml") || !strings.Contains(err.Error(), "does not exist") || ce.Hint() == "" {
			t.Errorf("got %v", err)
		}
	})
}

// TestConvertErrors: files that load but that Swarm cannot deploy.
// TestHostPortsOnPinnedNodes: the same host-mode port on services pinned to
// different nodes (one Consul server per node, examples/cluster) converts.
func TestHostPortsOnPinnedNodes(t *testing.T) {
	content := "services:\n"
	for _, n := range []string{"n1", "n2", "n3"} {
		content += "  consul-" + n + ":\n    image: x\n    ports: [{target: 8500, published: 18500, mode: host}]\n" +
			"    deploy: {placement: {constraints: [\"node.labels.zone == a\", \"node.hostname == " + n + "\"]}}\n"
	}
	f := writeCompose(t, content)
	p, _, err := LoadCompose(context.Background(), LoadOptions{Files: []string{f}, Env: goldenEnv})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Convert(p, ConvertOptions{}); err != nil {
		t.Errorf("convert: %v", err)
	}
}

func TestConvertErrors(t *testing.T) {
	tests := []struct {
		name, content, want string
	}{
		{"port twice across services", "services:\n  a:\n    image: x\n    ports: [\"8080:80\"]\n  b:\n    image: x\n    ports: [\"8080:81\"]\n",
			"port 8080/tcp is published twice: by services a and b"},
		{"host port twice, one service unpinned", "services:\n  a:\n    image: x\n    ports: [{target: 80, published: 8080, mode: host}]\n    deploy: {placement: {constraints: [node.hostname == n1]}}\n  b:\n    image: x\n    ports: [{target: 80, published: 8080, mode: host}]\n",
			"port 8080/tcp is published twice: by services a and b"},
		{"host port twice on the same node", "services:\n  a:\n    image: x\n    ports: [{target: 80, published: 8080, mode: host}]\n    deploy: {placement: {constraints: [node.hostname == n1]}}\n  b:\n    image: x\n    ports: [{target: 80, published: 8080, mode: host}]\n    deploy: {placement: {constraints: [\"node.hostname==n1\"]}}\n",
			"port 8080/tcp is published twice: by services a and b"},
		{"ingress port with a pinned host one", "services:\n  a:\n    image: x\n    ports: [{target: 80, published: 8080, mode: host}]\n    deploy: {placement: {constraints: [node.hostname == n1]}}\n  b:\n    image: x\n    ports: [\"8080:80\"]\n    deploy: {placement: {constraints: [node.hostname == n2]}}\n",
			"port 8080/tcp is published twice: by services a and b"},
		{"port twice in a service", "services:\n  a:\n    image: x\n    ports: [\"8080:80\", \"8080:81\"]\n", "port 8080/tcp is published twice by service a"},
		{"port range", "services:\n  a:\n    image: x\n    ports:\n      - target: 80\n        published: 8000-8010\n", "Swarm publishes single ports, not ranges"},
		{"cycle", "services:\n  a:\n    image: x\n    depends_on: [b]\n  b:\n    image: x\n    depends_on: [c]\n  c:\n    image: x\n    depends_on: [a]\n",
			"a -> b -> c -> a"},
		{"self cycle", "services:\n  a:\n    image: x\n    depends_on: [a]\n", "cycle detected: a -> a"},
		{"bad mode", "services:\n  a:\n    image: x\n    deploy:\n      mode: sideways\n", `deploy.mode "sideways"`},
		{"global with replicas", "services:\n  a:\n    image: x\n    deploy:\n      mode: global\n      replicas: 2\n", "replicas can only be used with mode replicated"},
		{"no image", "services:\n  a:\n    build: .\n", "has build but no image"},
		{"missing config file", "services:\n  a:\n    image: x\n    configs: [c]\nconfigs:\n  c:\n    file: ./nofile.txt\n", "configs.c: open"},
		{"unset secret variable", "services:\n  a:\n    image: x\n    secrets: [s]\nsecrets:\n  s:\n    environment: NOPE_NOT_SET\n", "environment variable NOPE_NOT_SET is not set"},
		{"empty secret", "services:\n  a:\n    image: x\n    secrets: [s]\nsecrets:\n  s:\n    file: /dev/null\n", "secrets.s: content is 0 bytes; Swarm takes 1 byte to 500 KB"},
		{"dnsrr with ingress port", "services:\n  a:\n    image: x\n    ports: [\"80:80\"]\n    deploy:\n      endpoint_mode: dnsrr\n", "dnsrr cannot publish port 80 in ingress mode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := writeCompose(t, tt.content)
			p, _, err := LoadCompose(context.Background(), LoadOptions{Files: []string{f}, Env: goldenEnv})
			if err == nil {
				_, err = Convert(p, ConvertOptions{})
			}
			if err == nil {
				t.Fatal("converted without error")
			}
			t.Logf("%s: %v", tt.name, err)
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q lacks %q", err, tt.want)
			}
		})
	}
}
