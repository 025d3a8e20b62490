package compose

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestLoadEnvMergeProfiles: .env next to the first file, --env-file instead
// of it, the environment winning over both, later files overriding earlier
// ones, and profiles.
func TestLoadEnvMergeProfiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	base := write("compose.yml", `
services:
  api:
    image: microctl/greeter:${TAG:-none}
    environment:
      LEVEL: ${LEVEL:-info}
    deploy:
      replicas: 1
  debug:
    image: microctl/greeter:dev
    profiles: [debug]
`)
	override := write("compose.prod.yml", `
services:
  api:
    environment:
      REGION: eu
    deploy:
      replicas: 3
`)
	write(".env", "TAG=fromdotenv\nLEVEL=debug\n")
	other := write("other.env", "TAG=fromenvfile\n")

	load := func(o LoadOptions) *Stack {
		t.Helper()
		o.Stack = "envtest"
		p, _, err := LoadCompose(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		st, err := Convert(p, ConvertOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	svc := func(st *Stack, name string) *Service {
		for i := range st.Services {
			if st.Services[i].Name == name {
				return &st.Services[i]
			}
		}
		return nil
	}

	st := load(LoadOptions{Files: []string{base, override}, Env: []string{}})
	api := svc(st, "api")
	if img := api.Spec.TaskTemplate.ContainerSpec.Image; img != "microctl/greeter:fromdotenv" {
		t.Errorf(".env not read: image %s", img)
	}
	if env := api.Spec.TaskTemplate.ContainerSpec.Env; !slices.Equal(env, []string{"LEVEL=debug", "REGION=eu"}) {
		t.Errorf("merged environment %v", env)
	}
	if r := *api.Spec.Mode.Replicated.Replicas; r != 3 {
		t.Errorf("override replicas %d, want 3", r)
	}
	if svc(st, "debug") != nil {
		t.Error("a service of a disabled profile was converted")
	}

	st = load(LoadOptions{Files: []string{base}, Env: []string{"TAG=fromshell"}, Profiles: []string{"debug"}})
	if img := svc(st, "api").Spec.TaskTemplate.ContainerSpec.Image; img != "microctl/greeter:fromshell" {
		t.Errorf("the environment must win over .env: image %s", img)
	}
	if svc(st, "debug") == nil {
		t.Error("--profile debug did not enable the debug service")
	}

	st = load(LoadOptions{Files: []string{base}, Env: []string{}, EnvFiles: []string{other}})
	api = svc(st, "api")
	if img := api.Spec.TaskTemplate.ContainerSpec.Image; img != "microctl/greeter:fromenvfile" {
		t.Errorf("--env-file not used: image %s", img)
	}
	if env := api.Spec.TaskTemplate.ContainerSpec.Env; !slices.Equal(env, []string{"LEVEL=info"}) {
		t.Errorf("--env-file must replace .env: environment %v", env)
	}

	st = load(LoadOptions{Files: []string{base}, Env: []string{"COMPOSE_PROFILES=debug"}})
	if svc(st, "debug") == nil {
		t.Error("COMPOSE_PROFILES=debug did not enable the debug service")
	}
}
