package tokenwriter

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Registry is one ECR registry tokenwriter keeps a token for.
type Registry struct {
	// AccountID is the registry id sent as registryIds; empty only in
	// single-registry mode without ECR_REGISTRY_ID.
	AccountID string
	// Region is the region of the ECR API that mints the registry's token.
	Region string
	// Endpoint (host[:port]) replaces the host of the proxyEndpoint ECR
	// returns; empty: use proxyEndpoint.
	Endpoint string
}

// String names the registry in logs, errors and the registry metric label:
// "<account>/<region>", or "default" for the one registry of single mode
// when ECR_REGISTRY_ID is unset.
func (r Registry) String() string {
	if r.AccountID == "" {
		return "default"
	}
	return r.AccountID + "/" + r.Region
}

// upstream is the name of the registry's nginx upstream in multi-registry mode.
func (r Registry) upstream() string {
	return "ecr_" + r.AccountID + "_" + strings.ReplaceAll(r.Region, "-", "_")
}

// Route sends the requests for one gateway host name to a registry.
type Route struct {
	// Host is the gateway host name as nginx's $host spells it (lower case,
	// no port), or "*" for every host no other route names.
	Host string
	// Registry indexes the registries Routes returns.
	Registry int
}

// AnyHost is the Route.Host that matches every host no other route names.
const AnyHost = "*"

var (
	regionPattern   = regexp.MustCompile(`^[a-z]{2}(-[a-z0-9]+)+$`)
	ecrHostPattern  = regexp.MustCompile(`^([0-9]{12})\.dkr\.ecr(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$`)
	errNoRegistries = errors.New("no entries")
)

// mapKeywords cannot be map keys in nginx, even quoted.
var mapKeywords = map[string]bool{"default": true, "hostnames": true, "include": true, "volatile": true}

// Routes returns the gateway hosts and the registries behind them, in the
// order of ECR_REGISTRIES; the registry of the first route (or of "*") comes
// first and is the one `upstream ecr_registry` names. Without ECR_REGISTRIES
// it is one "*" route to the registry of ECR_REGISTRY_ID / ECR_REGISTRY_HOST.
// multi reports whether ECR_REGISTRIES is set.
func (c Config) Routes() (routes []Route, registries []Registry, multi bool, err error) {
	if strings.TrimSpace(c.Registries) == "" {
		return []Route{{Host: AnyHost}}, []Registry{{AccountID: c.RegistryID, Region: c.region(), Endpoint: c.RegistryHost}}, false, nil
	}
	routes, registries, err = parseRegistries(c.Registries, c.region())
	return routes, registries, true, err
}

// parseRegistries parses ECR_REGISTRIES: comma-separated
// <gateway host>=<registry> entries; see the package documentation.
func parseRegistries(s, defaultRegion string) ([]Route, []Registry, error) {
	var errs []error
	var routes []Route
	var registries []Registry
	index := map[string]int{} // account/region -> registries index
	seen := map[string]bool{}
	for _, entry := range strings.Split(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue // a trailing comma, or a line break in YAML
		}
		host, reg, err := parseEntry(entry, defaultRegion)
		if err != nil {
			errs = append(errs, fmt.Errorf("ECR_REGISTRIES: entry %q: %w", entry, err))
			continue
		}
		if seen[host] {
			errs = append(errs, fmt.Errorf("ECR_REGISTRIES: entry %q: gateway host %s is already listed", entry, host))
			continue
		}
		seen[host] = true
		key := reg.String()
		i, ok := index[key]
		if !ok {
			i = len(registries)
			index[key] = i
			registries = append(registries, reg)
		} else if registries[i].Endpoint != reg.Endpoint {
			errs = append(errs, fmt.Errorf("ECR_REGISTRIES: entry %q: registry %s is already listed with endpoint %q", entry, key, registries[i].Endpoint))
			continue
		}
		routes = append(routes, Route{Host: host, Registry: i})
	}
	if len(errs) > 0 {
		return nil, nil, errors.Join(errs...)
	}
	if len(routes) == 0 {
		return nil, nil, fmt.Errorf("ECR_REGISTRIES: %w", errNoRegistries)
	}
	// The "*" registry, when there is one, is the primary: move it first.
	if i := slices.IndexFunc(routes, func(r Route) bool { return r.Host == AnyHost }); i >= 0 && routes[i].Registry != 0 {
		p := routes[i].Registry
		registries[0], registries[p] = registries[p], registries[0]
		for j := range routes {
			switch routes[j].Registry {
			case 0:
				routes[j].Registry = p
			case p:
				routes[j].Registry = 0
			}
		}
	}
	return routes, registries, nil
}

func parseEntry(entry, defaultRegion string) (string, Registry, error) {
	host, target, ok := strings.Cut(entry, "=")
	if !ok {
		return "", Registry{}, errors.New("want <gateway host>=<registry>")
	}
	host, err := gatewayHost(strings.TrimSpace(host))
	if err != nil {
		return "", Registry{}, err
	}
	target = strings.TrimSpace(target)
	var reg Registry
	if t, endpoint, ok := strings.Cut(target, "@"); ok {
		if _, _, err := parseHostPort(endpoint); err != nil {
			return "", Registry{}, fmt.Errorf("endpoint: %w", err)
		}
		target, reg.Endpoint = t, endpoint
	}
	if m := ecrHostPattern.FindStringSubmatch(strings.ToLower(target)); m != nil {
		reg.AccountID, reg.Region = m[1], m[2]
		return host, reg, nil
	}
	account, region, hasRegion := strings.Cut(target, "/")
	if !registryIDPattern.MatchString(account) {
		return "", Registry{}, errors.New("want a 12-digit account id, <account>/<region> or <account>.dkr.ecr.<region>.amazonaws.com")
	}
	reg.AccountID, reg.Region = account, defaultRegion
	if hasRegion {
		if !regionPattern.MatchString(region) {
			return "", Registry{}, fmt.Errorf("%q is not a region name", region)
		}
		reg.Region = region
	}
	if reg.Region == "" {
		return "", Registry{}, errors.New("no region: name it (<account>/<region>) or set AWS_REGION")
	}
	return host, reg, nil
}

// gatewayHost checks a gateway host name and spells it as nginx's $host
// does: lower case, without a trailing dot.
func gatewayHost(s string) (string, error) {
	if s == AnyHost {
		return s, nil
	}
	h := strings.TrimSuffix(strings.ToLower(s), ".")
	if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		if _, _, err := parseHostPort(h); err != nil || !strings.Contains(h, ":") {
			return "", fmt.Errorf("gateway host %q is not a host name or IP address", s)
		}
		return h, nil
	}
	if strings.Contains(h, ":") {
		return "", fmt.Errorf("gateway host %q: give the name without a port, as nginx's $host has none", s)
	}
	if _, _, err := parseHostPort(h); err != nil {
		return "", fmt.Errorf("gateway host %q is not a host name, an IP address or *", s)
	}
	if mapKeywords[h] {
		return "", fmt.Errorf("gateway host %q is an nginx map keyword", s)
	}
	return h, nil
}
