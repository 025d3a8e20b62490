// Package neterr turns network errors into the few words a person needs.
package neterr

import (
	"context"
	"crypto/x509"
	"errors"
	"net"
	"net/url"
	"syscall"
)

// Reason reduces a network error to the few words a person needs
// ("connection refused", "no such host"), dropping the URL and the
// Go-internal operation names that the raw error carries.
func Reason(err error) string {
	var dnsErr *net.DNSError
	var unknownCA x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset by peer"
	case errors.Is(err, syscall.EHOSTUNREACH):
		return "no route to host"
	case errors.Is(err, syscall.ENETUNREACH):
		return "network is unreachable"
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return "permission denied"
	case errors.Is(err, syscall.ENOENT):
		return "no such socket"
	case errors.As(err, &dnsErr):
		if dnsErr.IsNotFound {
			return "no such host " + dnsErr.Name
		}
		return "name resolution failed for " + dnsErr.Name
	case errors.As(err, &unknownCA):
		return "TLS certificate signed by an unknown authority"
	case errors.As(err, &hostErr):
		return "TLS certificate is not valid for " + hostErr.Host
	case errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		return "timed out"
	}
	var ure *url.Error
	if errors.As(err, &ure) && ure.Err != nil {
		err = ure.Err
	}
	var ope *net.OpError
	if errors.As(err, &ope) && ope.Err != nil {
		return ope.Err.Error()
	}
	return err.Error()
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
