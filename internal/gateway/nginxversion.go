package gateway

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"time"
)

// nginxVersion is nginx's release as `nginx -v` prints it.
type nginxVersion struct{ major, minor, patch int }

func (v nginxVersion) String() string { return fmt.Sprintf("%d.%d.%d", v.major, v.minor, v.patch) }

func (v nginxVersion) atLeast(o nginxVersion) bool {
	if v.major != o.major {
		return v.major > o.major
	}
	if v.minor != o.minor {
		return v.minor > o.minor
	}
	return v.patch >= o.patch
}

// keepaliveMinTimeoutSince is the first nginx with keepalive_min_timeout.
var keepaliveMinTimeoutSince = nginxVersion{1, 27, 4}

// supportsKeepaliveMinTimeout reports whether a reload of this nginx can keep
// idle client connections instead of closing them.
func (v nginxVersion) supportsKeepaliveMinTimeout() bool {
	return v.atLeast(keepaliveMinTimeoutSince)
}

// Only nginx itself: forks (freenginx, OpenResty, Angie) number their releases
// their own way, and are treated as lacking what the version cannot prove.
var nginxVersionRE = regexp.MustCompile(`nginx version: nginx/(\d+)\.(\d+)\.(\d+)`)

// parseNginxVersion reads the output of `nginx -v`.
func parseNginxVersion(out []byte) (nginxVersion, bool) {
	m := nginxVersionRE.FindSubmatch(out)
	if m == nil {
		return nginxVersion{}, false
	}
	var n [3]int
	for i := range n {
		v, err := strconv.Atoi(string(m[i+1]))
		if err != nil {
			return nginxVersion{}, false
		}
		n[i] = v
	}
	return nginxVersion{n[0], n[1], n[2]}, true
}

// probeNginxVersion runs `nginx -v` (it prints to stderr).
func probeNginxVersion(ctx context.Context, path string) (nginxVersion, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "-v").CombinedOutput()
	if err != nil {
		return nginxVersion{}, fmt.Errorf("%s -v: %w", path, err)
	}
	v, ok := parseNginxVersion(bytes.TrimSpace(out))
	if !ok {
		return nginxVersion{}, fmt.Errorf("%s -v: unrecognised version %q", path, bytes.TrimSpace(out))
	}
	return v, nil
}
