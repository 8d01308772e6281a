package ecremu

import (
	"net"
	"slices"
	"testing"
)

func TestSplitHost(t *testing.T) {
	tests := []struct {
		in, host, port string
		ok             bool
	}{
		{"localhost", "localhost", "", true},
		{"localhost:5002", "localhost", "5002", true},
		{"demo-ecr:5443", "demo-ecr", "5443", true},
		{"10.0.0.7", "10.0.0.7", "", true},
		{"[::1]", "::1", "", true},
		{"[::1]:5002", "::1", "5002", true},
		{"", "", "", false},
		{"::1", "", "", false},
		{"host:", "", "", false},
		{":5002", "", "", false},
		{"host:0", "", "", false},
		{"host:65536", "", "", false},
		{"host:http", "", "", false},
		{"http://host", "", "", false},
		{"user@host", "", "", false},
		{"host/path", "", "", false},
		{"a b", "", "", false},
		{"[host]", "", "", false},
		{"[host]:80", "", "", false},
		{"[::1:80", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			host, port, err := SplitHost(tt.in)
			if (err == nil) != tt.ok || host != tt.host || port != tt.port {
				t.Errorf("got %q, %q, %v; want %q, %q, ok %v", host, port, err, tt.host, tt.port, tt.ok)
			}
		})
	}
}

func TestCheckListenAddr(t *testing.T) {
	for addr, ok := range map[string]bool{
		"127.0.0.1:0": true, "0.0.0.0:5443": true, ":8080": true, "[::]:5002": true, "localhost:1": true,
		"": false, "127.0.0.1": false, "127.0.0.1:65536": false, "127.0.0.1:https": false, "127.0.0.1:-1": false,
	} {
		if err := CheckListenAddr(addr); (err == nil) != ok {
			t.Errorf("CheckListenAddr(%q): got %v; want ok %v", addr, err, ok)
		}
	}
}

func TestCheckCertHosts(t *testing.T) {
	for _, tt := range []struct {
		hosts []string
		ok    bool
	}{
		{nil, true},
		{[]string{"demo-ecr", "ecr.example.test", "10.1.2.3", "::1", "localhost."}, true},
		{[]string{""}, false},
		{[]string{"demo-ecr:5443"}, false},
		{[]string{"-bad.test"}, false},
		{[]string{"a..b"}, false},
		{[]string{"under_score"}, false},
		{[]string{"ok", "https://x"}, false},
	} {
		if err := CheckCertHosts(tt.hosts); (err == nil) != tt.ok {
			t.Errorf("CheckCertHosts(%q): got %v; want ok %v", tt.hosts, err, tt.ok)
		}
	}
}

func TestCertNames(t *testing.T) {
	dns, ips := certNames([]string{"localhost", "127.0.0.1", "demo-ecr", "", "localhost", "10.1.2.3", "127.0.0.1"})
	if !slices.Equal(dns, []string{"localhost", "demo-ecr"}) {
		t.Errorf("DNS names got %q; want [localhost demo-ecr]", dns)
	}
	if len(ips) != 2 || !ips[0].Equal(net.IPv4(127, 0, 0, 1)) || !ips[1].Equal(net.IPv4(10, 1, 2, 3)) {
		t.Errorf("IPs got %v; want [127.0.0.1 10.1.2.3]", ips)
	}
}

// fakeListener only has an address.
type fakeListener struct {
	net.Listener
	addr *net.TCPAddr
}

func (l fakeListener) Addr() net.Addr { return l.addr }

func TestAdvertisedAndLocal(t *testing.T) {
	every := fakeListener{addr: &net.TCPAddr{IP: net.IPv4zero, Port: 5443}}
	every6 := fakeListener{addr: &net.TCPAddr{IP: net.IPv6unspecified, Port: 8080}}
	loop := fakeListener{addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}}
	for _, tt := range []struct{ got, want string }{
		{advertised("demo-ecr", every), "demo-ecr:5443"},
		{advertised("localhost:5002", every), "localhost:5002"},
		{advertised("[::1]", loop), "[::1]:40000"},
		{localHostPort(every), "127.0.0.1:5443"},
		{localHostPort(every6), "127.0.0.1:8080"},
		{localHostPort(loop), "127.0.0.1:40000"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q; want %q", tt.got, tt.want)
		}
	}
}
