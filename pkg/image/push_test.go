package image

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/api/types/system"
	"github.com/docker/docker/client"
)

// fakeEngine is an engine in docker/cli's style: the client interface
// embedded, the methods a push uses backed by a map name -> ID, and a
// record of what was loaded and tagged.
type fakeEngine struct {
	client.APIClient
	mu      sync.Mutex
	images  map[string]string // ref or ID -> ID
	loadErr error
	stall   bool // ImageLoad reads nothing and blocks until ctx ends
	loaded  [][]byte
	tagged  []string
	saved   [][]string
	noApply bool // a load that "succeeds" without creating the image
}

func newFake(images map[string]string) *fakeEngine {
	m := map[string]string{}
	for k, v := range images {
		m[k] = v
		m[v] = v
	}
	return &fakeEngine{images: m}
}

func (f *fakeEngine) ImageInspect(_ context.Context, ref string, _ ...client.ImageInspectOption) (image.InspectResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id, ok := f.images[ref]
	if !ok {
		return image.InspectResponse{}, cerrdefs.ErrNotFound.WithMessage("No such image: " + ref)
	}
	return image.InspectResponse{ID: id}, nil
}

// The "archive" is the list of refs and their IDs, one per line.
func (f *fakeEngine) ImageSave(_ context.Context, refs []string, _ ...client.ImageSaveOption) (io.ReadCloser, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.saved = append(f.saved, refs)
	var b strings.Builder
	for _, r := range refs {
		b.WriteString(r + " " + f.images[r] + "\n")
	}
	return io.NopCloser(strings.NewReader(b.String())), nil
}

func (f *fakeEngine) ImageLoad(ctx context.Context, r io.Reader, _ ...client.ImageLoadOption) (image.LoadResponse, error) {
	if f.stall {
		<-ctx.Done()
		return image.LoadResponse{}, ctx.Err()
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return image.LoadResponse{}, err
	}
	if f.loadErr != nil {
		return image.LoadResponse{}, f.loadErr
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.loaded = append(f.loaded, b)
	if !f.noApply {
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			ref, id, _ := strings.Cut(line, " ")
			f.images[ref], f.images[id] = id, id
		}
	}
	body := `{"stream":"Loaded image: x\n"}` + "\n"
	return image.LoadResponse{Body: io.NopCloser(strings.NewReader(body)), JSON: true}, nil
}

func (f *fakeEngine) ImageTag(_ context.Context, src, dst string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tagged = append(f.tagged, src+" "+dst)
	f.images[dst] = f.images[src]
	return nil
}

func TestPushDecisions(t *testing.T) {
	src := newFake(map[string]string{"microctl/greeter:dev": "sha256:g1", "microctl/gateway:dev": "sha256:w1"})
	tests := []struct {
		name       string
		target     *fakeEngine
		want       map[string]Status
		wantLoaded string // what the target's load received ("" when nothing)
		wantTagged []string
		wantErr    string
	}{
		{
			name:   "same ID already there is skipped",
			target: newFake(map[string]string{"microctl/greeter:dev": "sha256:g1", "microctl/gateway:dev": "sha256:w1"}),
			want:   map[string]Status{"microctl/greeter:dev": StatusPresent, "microctl/gateway:dev": StatusPresent},
		},
		{
			name:       "missing and stale images are sent in one archive",
			target:     newFake(map[string]string{"microctl/greeter:dev": "sha256:OLD"}),
			want:       map[string]Status{"microctl/greeter:dev": StatusSent, "microctl/gateway:dev": StatusSent},
			wantLoaded: "microctl/greeter:dev sha256:g1\nmicroctl/gateway:dev sha256:w1\n",
		},
		{
			name:       "the ID under another name is tagged, not sent",
			target:     newFake(map[string]string{"other:1": "sha256:g1", "microctl/gateway:dev": "sha256:w1"}),
			want:       map[string]Status{"microctl/greeter:dev": StatusTagged, "microctl/gateway:dev": StatusPresent},
			wantTagged: []string{"sha256:g1 microctl/greeter:dev"},
		},
		{
			name:    "a load that does not produce the ID is a failure",
			target:  func() *fakeEngine { f := newFake(nil); f.noApply = true; return f }(),
			want:    map[string]Status{"microctl/greeter:dev": StatusFailed, "microctl/gateway:dev": StatusFailed},
			wantErr: "after the load, inspect microctl/greeter:dev",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			imgs, err := Resolve(ctx, src, []string{"microctl/greeter:dev", "microctl/gateway:dev", "microctl/greeter:dev"}, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			res, err := Push(ctx, src, imgs, []Target{{Name: "n2", Engine: tt.target}})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrPartial) {
					t.Fatalf("err = %v, want ErrPartial with %q", err, tt.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			got := map[string]Status{}
			for _, ir := range res[0].Images {
				got[ir.Ref] = ir.Status
			}
			if !equalMap(got, tt.want) {
				t.Errorf("statuses %v, want %v", got, tt.want)
			}
			if tt.wantLoaded == "" && len(tt.target.loaded) > 0 && tt.wantErr == "" {
				t.Errorf("loaded %q, want nothing sent", tt.target.loaded)
			}
			if tt.wantLoaded != "" {
				if len(tt.target.loaded) != 1 {
					t.Fatalf("%d loads, want 1", len(tt.target.loaded))
				}
				if string(tt.target.loaded[0]) != tt.wantLoaded {
					t.Errorf("loaded %q, want %q", tt.target.loaded[0], tt.wantLoaded)
				}
				if res[0].Bytes != int64(len(tt.target.loaded[0])) {
					t.Errorf("bytes %d, the target read %d", res[0].Bytes, len(tt.target.loaded[0]))
				}
			}
			if !slices.Equal(tt.target.tagged, tt.wantTagged) {
				t.Errorf("tagged %v, want %v", tt.target.tagged, tt.wantTagged)
			}
		})
	}
}

func equalMap(a, b map[string]Status) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// One target failing leaves the others served, and the error names it.
func TestPushPartialFailure(t *testing.T) {
	ctx := context.Background()
	src := newFake(map[string]string{"app:1": "sha256:a1"})
	good, bad, has := newFake(nil), newFake(nil), newFake(map[string]string{"app:1": "sha256:a1"})
	bad.loadErr = errors.New("no space left on device")
	imgs, err := Resolve(ctx, src, []string{"app:1"}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var events []Event
	res, err := Push(ctx, src, imgs, []Target{{Name: "n1", Engine: good}, {Name: "n2", Engine: bad}, {Name: "n3", Engine: has}},
		WithProgress(func(e Event) { events = append(events, e) }), WithParallel(2))
	if !errors.Is(err, ErrPartial) || !strings.Contains(err.Error(), "n2: load on n2: no space left on device") {
		t.Fatalf("err = %v", err)
	}
	want := []Status{StatusSent, StatusFailed, StatusPresent}
	for i, r := range res {
		if r.Images[0].Status != want[i] {
			t.Errorf("%s: %s, want %s", r.Target, r.Images[0].Status, want[i])
		}
	}
	if res[1].Error == "" || res[0].Error != "" {
		t.Errorf("errors: %q %q", res[0].Error, res[1].Error)
	}
	if len(src.saved) != 2 {
		t.Errorf("source saved %d times, want 2 (n3 already had it)", len(src.saved))
	}
	done := 0
	for _, e := range events {
		if e.Kind == EventDone {
			done++
		}
	}
	if done != 3 {
		t.Errorf("%d done events, want 3", done)
	}
}

func TestPushStall(t *testing.T) {
	ctx := context.Background()
	src := newFake(map[string]string{"app:1": "sha256:a1"})
	stuck := newFake(nil)
	stuck.stall = true
	imgs, _ := Resolve(ctx, src, []string{"app:1"}, time.Second)
	start := time.Now()
	_, err := Push(ctx, src, imgs, []Target{{Name: "n1", Engine: stuck}}, WithStall(300*time.Millisecond))
	if err == nil || !strings.Contains(err.Error(), "no progress for 300ms") {
		t.Fatalf("err = %v", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Errorf("the stall watchdog took %s", time.Since(start))
	}
}

func TestIsIDRef(t *testing.T) {
	id := "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for ref, want := range map[string]bool{
		id: true, "0123456789ab": true, "sha256:0123456789abcd": true,
		"0123456789ac": false, "app:1": false, "abc": false,
	} {
		if got := isIDRef(ref, id); got != want {
			t.Errorf("isIDRef(%q) = %v", ref, got)
		}
	}
}

func TestResolveMissing(t *testing.T) {
	src := newFake(map[string]string{"app:1": "sha256:a1"})
	_, err := Resolve(context.Background(), src, []string{"app:1", "nope:2"}, time.Second)
	if err == nil || !strings.Contains(err.Error(), "image nope:2 is not on the source engine") {
		t.Fatalf("err = %v", err)
	}
}

func TestEngineURL(t *testing.T) {
	tests := []struct {
		tmpl, addr, host, want, err string
	}{
		{tmpl: DefaultEngineURL, addr: "10.0.0.2", host: "n2", want: "ssh://10.0.0.2"},
		{tmpl: "ssh://admin@{hostname}:2222", addr: "10.0.0.2", host: "n2", want: "ssh://admin@n2:2222"},
		{tmpl: "tcp://{addr}:2375", addr: "fd00::2", host: "n2", want: "tcp://[fd00::2]:2375"},
		{tmpl: "unix:///run/lab/{hostname}/docker.sock", addr: "10.0.0.2", host: "n2", want: "unix:///run/lab/n2/docker.sock"},
		{tmpl: "ssh://{adr}", addr: "10.0.0.2", host: "n2", err: "unknown placeholder {adr}"},
		{tmpl: "ssh://{addr", addr: "10.0.0.2", host: "n2", err: "unbalanced braces"},
		{tmpl: "http://{addr}", addr: "10.0.0.2", host: "n2", err: "want unix://, tcp:// or ssh://"},
		{tmpl: "ssh://u:pw@{addr}", addr: "10.0.0.2", host: "n2", err: "no password"},
	}
	for _, tt := range tests {
		t.Run(tt.tmpl, func(t *testing.T) {
			got, err := EngineURL(tt.tmpl, tt.addr, tt.host)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestSSHArgs(t *testing.T) {
	tests := []struct{ url, want string }{
		{"ssh://host", "-o BatchMode=yes -o ConnectTimeout=30 -- host docker system dial-stdio"},
		{"ssh://me@host:2222", "-o BatchMode=yes -o ConnectTimeout=30 -l me -p 2222 -- host docker system dial-stdio"},
		// A host that looks like an option stays a host: it comes after --.
		{"ssh://-oProxyCommand=x", "-o BatchMode=yes -o ConnectTimeout=30 -- -oProxyCommand=x docker system dial-stdio"},
		{"ssh://[fd00::2]:22", "-o BatchMode=yes -o ConnectTimeout=30 -p 22 -- fd00::2 docker system dial-stdio"},
	}
	for _, tt := range tests {
		u, err := url.Parse(tt.url)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(SSHArgs(u), " "); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.url, got, tt.want)
		}
	}
}

// dialCommand carries bytes both ways through a process, as ssh's
// dial-stdio does; cat stands in for the remote end.
func TestDialCommandEcho(t *testing.T) {
	c, err := dialCommand(context.Background(), "cat")
	if err != nil {
		t.Skip(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("ping\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(c, buf); err != nil || !bytes.Equal(buf, []byte("ping\n")) {
		t.Fatalf("read %q, %v", buf, err)
	}
}

// A remote end that fails says why (ssh's stderr) rather than a bare EOF.
func TestDialCommandStderr(t *testing.T) {
	c, err := dialCommand(context.Background(), "sh", "-c", "echo 'Permission denied (publickey).' >&2")
	if err != nil {
		t.Skip(err)
	}
	defer c.Close()
	time.Sleep(100 * time.Millisecond)
	_, err = io.ReadAll(c)
	if err == nil || !strings.Contains(err.Error(), "Permission denied") {
		t.Fatalf("err = %v", err)
	}
}

type fakeSwarm struct {
	client.APIClient
	info  system.Info
	nodes []swarm.Node
}

func (f *fakeSwarm) Info(context.Context) (system.Info, error) { return f.info, nil }
func (f *fakeSwarm) NodeList(context.Context, swarm.NodeListOptions) ([]swarm.Node, error) {
	return f.nodes, nil
}

func TestNodeEngines(t *testing.T) {
	node := func(id, host, addr string) swarm.Node {
		n := swarm.Node{ID: id}
		n.Description.Hostname, n.Status.Addr, n.Status.State = host, addr, swarm.NodeStateReady
		return n
	}
	api := &fakeSwarm{nodes: []swarm.Node{node("a", "n1", "10.1.0.11"), node("b", "n2", "10.1.0.12"), node("c", "n3", "10.1.0.13")}}
	api.info.Swarm.LocalNodeState, api.info.Swarm.ControlAvailable, api.info.Swarm.NodeID = swarm.LocalNodeStateActive, true, "a"
	got, err := NodeEngines(context.Background(), api, "ssh://root@{addr}")
	if err != nil {
		t.Fatal(err)
	}
	var urls []string
	for _, n := range got {
		urls = append(urls, n.URL)
	}
	if want := []string{"", "ssh://root@10.1.0.12", "ssh://root@10.1.0.13"}; !slices.Equal(urls, want) || !got[0].Self {
		t.Errorf("urls %q self %v, want %q with n1 self", urls, got[0].Self, want)
	}
	api.info.Swarm.ControlAvailable = false
	if _, err := NodeEngines(context.Background(), api, ""); err == nil || !strings.Contains(err.Error(), "swarm manager") {
		t.Errorf("worker: err = %v", err)
	}
}
