package ecremu

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
)

// SplitHost splits a host as it appears in a URL, "host" or "host:port"
// (IPv6 literals in brackets), into host, without brackets, and port, "" when
// absent. It is the form of Config.S3Host and Config.RegistryHost.
func SplitHost(s string) (host, port string, err error) {
	if s == "" || strings.ContainsAny(s, "/@?# \t\\") {
		return "", "", fmt.Errorf("want host or host:port, got %q", s)
	}
	host = s
	switch {
	case strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]"):
		host = s[1 : len(s)-1]
	case strings.Contains(s, ":"):
		if host, port, err = net.SplitHostPort(s); err != nil {
			return "", "", fmt.Errorf("want host or host:port, got %q", s)
		}
		if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
			return "", "", fmt.Errorf("want a port from 1 to 65535, got %q in %q", port, s)
		}
	}
	// Brackets hold an IPv6 literal, and an IPv6 literal needs them.
	ipv6 := strings.Contains(host, ":")
	if host == "" || strings.ContainsAny(host, "[]") || ipv6 != strings.HasPrefix(s, "[") || (ipv6 && net.ParseIP(host) == nil) {
		return "", "", fmt.Errorf("want host or host:port, got %q", s)
	}
	return host, port, nil
}

// CheckListenAddr accepts a listen address as net.Listen takes it: host:port,
// with an empty host for every interface and port 0 for a free one.
func CheckListenAddr(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("want host:port, got %q", addr)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("want a port from 0 to 65535, got %q in %q", port, addr)
	}
	return nil
}

// CheckCertHosts accepts DNS names and IP addresses for a certificate.
func CheckCertHosts(hosts []string) error {
	var errs []error
	for _, h := range hosts {
		if net.ParseIP(h) == nil && !validDNSName(h) {
			errs = append(errs, fmt.Errorf("want a DNS name or an IP address, got %q", h))
		}
	}
	return errors.Join(errs...)
}

func validDNSName(name string) bool {
	if name == "" || len(name) > 253 {
		return false
	}
	for label := range strings.SplitSeq(strings.TrimSuffix(name, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

// certNames sorts hosts into the DNS names and IP addresses of a
// certificate, without repeats.
func certNames(hosts []string) (dnsNames []string, ips []net.IP) {
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			if !slices.ContainsFunc(ips, ip.Equal) {
				ips = append(ips, ip)
			}
		} else if h != "" && !slices.Contains(dnsNames, h) {
			dnsNames = append(dnsNames, h)
		}
	}
	return dnsNames, ips
}

// advertised is host (validated, see SplitHost) as host:port, with l's port
// when host has none.
func advertised(host string, l net.Listener) string {
	h, port, _ := SplitHost(host)
	if port == "" {
		port = strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	}
	return net.JoinHostPort(h, port)
}

// localHostPort is l's address as a client on the same machine dials it:
// 127.0.0.1 for a listener on every interface.
func localHostPort(l net.Listener) string {
	a := l.Addr().(*net.TCPAddr)
	ip := a.IP
	if ip.IsUnspecified() {
		ip = net.IPv4(127, 0, 0, 1)
	}
	return net.JoinHostPort(ip.String(), strconv.Itoa(a.Port))
}
