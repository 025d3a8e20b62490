package compose

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/docker/docker/api/types/swarm"
)

// hashLen is how many hex digits of the content's SHA-256 a config or
// secret name carries: enough that two versions never collide in practice,
// short enough to keep names under Swarm's 64-character limit.
const hashLen = 10

var hashSuffixRe = regexp.MustCompile(`-[0-9a-f]{10}$`)

// VersionedName is base with the content hash of data appended.
func VersionedName(base string, data []byte) string {
	sum := sha256.Sum256(data)
	return base + "-" + hex.EncodeToString(sum[:])[:hashLen]
}

// BaseName strips a content-hash suffix, if any: the name a versioned
// config or secret was derived from.
func BaseName(name string) string {
	return hashSuffixRe.ReplaceAllString(name, "")
}

// fileObjects and secretObjects give configs and secrets one shape.
func fileObjects(m types.Configs) map[string]types.FileObjectConfig {
	out := make(map[string]types.FileObjectConfig, len(m))
	for k, v := range m {
		out[k] = types.FileObjectConfig(v)
	}
	return out
}

func secretObjects(m types.Secrets) map[string]types.FileObjectConfig {
	out := make(map[string]types.FileObjectConfig, len(m))
	for k, v := range m {
		out[k] = types.FileObjectConfig(v)
	}
	return out
}

// objects converts the top-level configs or secrets that some service uses.
func (c *converter) objects(kind string, m map[string]types.FileObjectConfig) ([]Object, error) {
	used := map[string]bool{}
	for _, s := range c.p.Services {
		refs := s.Configs
		if kind == "secrets" {
			refs = nil
			for _, r := range s.Secrets {
				refs = append(refs, types.ServiceConfigObjConfig(r))
			}
		}
		for _, r := range refs {
			if _, ok := m[r.Source]; !ok {
				return nil, fmt.Errorf("service %s uses undefined %s %q", s.Name, strings.TrimSuffix(kind, "s"), r.Source)
			}
			used[r.Source] = true
		}
	}
	var out []Object
	for _, key := range slices.Sorted(maps.Keys(m)) {
		o := m[key]
		if !used[key] {
			c.warnf("%s.%s: no service uses it; not created", kind, key)
			continue
		}
		obj := Object{Key: key, Name: o.Name, Base: o.Name, External: bool(o.External), Labels: c.labels(o.Labels)}
		if obj.External {
			out = append(out, obj)
			continue
		}
		obj.Fixed = o.Name != c.scope(key)
		if o.TemplateDriver != "" {
			obj.Templating = &swarm.Driver{Name: o.TemplateDriver}
		}
		switch {
		case o.Driver != "" && kind == "secrets":
			// Held by an external secret store: no data of our own.
			obj.Driver = &swarm.Driver{Name: o.Driver, Options: o.DriverOpts}
			obj.Data = []byte{}
		case o.File != "":
			data, err := os.ReadFile(o.File)
			if err != nil {
				return nil, fmt.Errorf("%s.%s: %w", kind, key, err)
			}
			obj.Data = data
		case o.Environment != "":
			v, ok := c.p.Environment[o.Environment]
			if !ok {
				return nil, fmt.Errorf("%s.%s: environment variable %s is not set", kind, key, o.Environment)
			}
			obj.Data = []byte(v)
		case o.Content != "":
			obj.Data = []byte(o.Content)
		default:
			return nil, fmt.Errorf("%s.%s: needs file, environment or content (or external: true)", kind, key)
		}
		// Swarm's own limits (swarmkit's validation), caught before
		// anything is created.
		limit := 1000 * 1024
		if kind == "secrets" {
			limit = 500 * 1024
		}
		if obj.Driver == nil && (len(obj.Data) == 0 || len(obj.Data) > limit) {
			return nil, fmt.Errorf("%s.%s: content is %d bytes; Swarm takes 1 byte to %d KB", kind, key, len(obj.Data), limit/1024)
		}
		if !obj.Fixed {
			// The template driver changes what the content means, so it
			// is part of the version too.
			obj.Name = VersionedName(obj.Base, append([]byte(o.TemplateDriver+"\x00"), obj.Data...))
		}
		if len(obj.Name) > 64 {
			return nil, fmt.Errorf("%s.%s: name %s is longer than Swarm's 64 characters: use a shorter stack or %s name", kind, key, obj.Name, strings.TrimSuffix(kind, "s"))
		}
		out = append(out, obj)
	}
	return out, nil
}

func (c *converter) objectName(kind, key string) string {
	list := c.stack.Configs
	if kind == "secrets" {
		list = c.stack.Secrets
	}
	for _, o := range list {
		if o.Key == key {
			return o.Name
		}
	}
	return c.scope(key)
}

// fileRefs converts a service's configs or secrets references, the way
// docker stack does (target defaults to the key, uid/gid 0, mode 0444).
func (c *converter) configRefs(refs []types.ServiceConfigObjConfig) []*swarm.ConfigReference {
	out := []*swarm.ConfigReference{}
	for _, r := range refs {
		f := fileTarget(types.FileReferenceConfig(r))
		out = append(out, &swarm.ConfigReference{
			ConfigName: c.objectName("configs", r.Source),
			File:       &swarm.ConfigReferenceFileTarget{Name: f.Name, UID: f.UID, GID: f.GID, Mode: f.Mode},
		})
	}
	sortByName(out, func(r *swarm.ConfigReference) string { return r.ConfigName + "\x00" + r.File.Name })
	return out
}

func (c *converter) secretRefs(refs []types.ServiceSecretConfig) []*swarm.SecretReference {
	out := []*swarm.SecretReference{}
	for _, r := range refs {
		f := fileTarget(types.FileReferenceConfig(r))
		// compose-go spells the default target /run/secrets/NAME; Swarm
		// (and docker stack) use the bare NAME for the same file. Keep
		// docker's form so its stacks compare equal.
		if rest, ok := strings.CutPrefix(f.Name, "/run/secrets/"); ok && rest != "" && !strings.Contains(rest, "/") {
			f.Name = rest
		}
		out = append(out, &swarm.SecretReference{
			SecretName: c.objectName("secrets", r.Source),
			File:       &swarm.SecretReferenceFileTarget{Name: f.Name, UID: f.UID, GID: f.GID, Mode: f.Mode},
		})
	}
	sortByName(out, func(r *swarm.SecretReference) string { return r.SecretName + "\x00" + r.File.Name })
	return out
}

type fileRef struct {
	Name, UID, GID string
	Mode           os.FileMode
}

func fileTarget(r types.FileReferenceConfig) fileRef {
	f := fileRef{Name: r.Target, UID: r.UID, GID: r.GID, Mode: 0o444}
	if f.Name == "" {
		f.Name = r.Source
	}
	if f.UID == "" {
		f.UID = "0"
	}
	if f.GID == "" {
		f.GID = "0"
	}
	if r.Mode != nil {
		f.Mode = os.FileMode(*r.Mode)
	}
	return f
}
