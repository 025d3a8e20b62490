// Package cmdutil is the plumbing shared by microctl's commands: the
// dependency factory, I/O streams, output formats, connection flags and the
// errors that map to exit codes. Commands import it; pkg/ never does.
package cmdutil

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/client"

	"github.com/microctl/microctl/internal/boundhttp"
	"github.com/microctl/microctl/pkg/registry"
)

// Factory hands commands their dependencies. Clients are built on first
// use, so a command that needs no Consul never reads its configuration and
// never dials it (the gh CLI's cmdutil.Factory pattern).
type Factory struct {
	IOStreams *IOStreams

	ConsulFlags ConsulFlags
	DockerFlags DockerFlags
	// Timeout bounds every request either client makes (--timeout).
	Timeout TimeoutFlag

	// Consul returns the Consul client, built once.
	Consul func() (*registry.Client, error)
	// Docker returns the Docker Engine client, built once.
	Docker func() (client.APIClient, error)
}

// NewFactory returns a factory whose clients are configured from the
// environment and the root command's connection flags.
func NewFactory(ios *IOStreams) *Factory {
	f := &Factory{IOStreams: ios}
	f.Consul = sync.OnceValues(func() (*registry.Client, error) {
		d, err := f.Timeout.Duration()
		if err != nil {
			return nil, err
		}
		return registry.NewClient(f.ConsulFlags.Config(), registry.WithTimeout(d))
	})
	f.Docker = sync.OnceValues(func() (client.APIClient, error) {
		if f.DockerFlags.fs != nil && f.DockerFlags.fs.Changed("docker-host") {
			if err := validateDockerHost(f.DockerFlags.Host); err != nil {
				return nil, &UsageError{Err: err}
			}
		}
		d, err := f.Timeout.Duration()
		if err != nil {
			return nil, err
		}
		c, err := client.NewClientWithOpts(append(f.DockerFlags.ClientOptions(), BoundDocker(d))...)
		if err != nil {
			return nil, fmt.Errorf("invalid Docker Engine configuration (DOCKER_HOST, DOCKER_CERT_PATH, --docker-host): %w", err)
		}
		return c, nil
	})
	return f
}

// BoundDocker is a client option, applied after every other, that puts the
// Docker client's transport behind a boundhttp transport: each request is
// bounded by d (0: unbounded), and a server that is not a Docker Engine is
// named as such. A streaming request (microctl logs -f) marks its context
// with boundhttp.Stream, so the bound covers its answer, not its body.
func BoundDocker(d time.Duration) client.Opt {
	return func(c *client.Client) error {
		hc := c.HTTPClient() // a copy sharing the configured transport
		tr, ok := hc.Transport.(*http.Transport)
		if !ok {
			return nil
		}
		// The client decides on https by looking at its *http.Transport's
		// TLS config, which it can no longer see once wrapped.
		if tr.TLSClientConfig != nil {
			if err := client.WithScheme("https")(c); err != nil {
				return err
			}
		}
		hc.Transport = boundhttp.New(tr, boundhttp.Options{
			Peer: "the Docker Engine", Addr: c.DaemonHost(), Timeout: d,
			Identify: identifyDocker, WrongPeer: "a Docker Engine",
			Sticky: isPing,
		})
		return client.WithHTTPClient(hc)(c)
	}
}

// isPing: the client pings once to negotiate the API version and ignores a
// failed ping, then sends the real request; a ping that timed out means
// that request would time out too.
func isPing(req *http.Request) bool { return strings.HasSuffix(req.URL.Path, "/_ping") }

// identifyDocker returns why resp cannot be a Docker Engine's. Every answer
// to /_ping from an engine carries Api-Version (and "Server: Docker/..."),
// and an engine never answers with HTML.
func identifyDocker(req *http.Request, resp *http.Response) string {
	if strings.Contains(resp.Header.Get("Content-Type"), "text/html") {
		return fmt.Sprintf("it answered %s %s with an HTML page, %s", req.Method, req.URL.Path, resp.Status)
	}
	if isPing(req) && resp.Header.Get("Api-Version") == "" && !strings.HasPrefix(resp.Header.Get("Server"), "Docker/") {
		return fmt.Sprintf("it answered %s %s with %s and without the Api-Version header every engine sends", req.Method, req.URL.Path, resp.Status)
	}
	return ""
}
