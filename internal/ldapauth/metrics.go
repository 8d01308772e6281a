package ldapauth

import (
	"errors"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the LDAP client's Prometheus collectors. A nil *Metrics records
// nothing. One Metrics serves one Client.
type Metrics struct {
	opDuration *prometheus.HistogramVec
	serverUp   *prometheus.GaugeVec
	poolConns  *prometheus.GaugeVec
}

// NewMetrics creates the collectors and registers them with reg:
//
//	authsvc_ldap_operation_duration_seconds{op,result}  histogram; op is connect,
//	    search_user, bind_user or search_groups; result is ok, rejected (the
//	    server answered with an LDAP error, a wrong password included) or error
//	authsvc_ldap_server_up{server}                      1 when the last attempt worked
//	authsvc_ldap_pool_connections{pool,state}           pool search|bind, state open|idle
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		opDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "authsvc_ldap_operation_duration_seconds",
			Help:    "Latency of LDAP operations by operation and result.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"op", "result"}),
		serverUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "authsvc_ldap_server_up",
			Help: "1 when the last connection attempt to the LDAP server succeeded.",
		}, []string{"server"}),
		poolConns: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "authsvc_ldap_pool_connections",
			Help: "Pooled LDAP connections by pool and state (open includes idle).",
		}, []string{"pool", "state"}),
	}
	reg.MustRegister(m.opDuration, m.serverUp, m.poolConns)
	return m
}

func (m *Metrics) observe(op string, start time.Time, err error) {
	if m == nil {
		return
	}
	m.opDuration.WithLabelValues(op, resultLabel(err)).Observe(time.Since(start).Seconds())
}

func resultLabel(err error) string {
	var le *ldap.Error
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &le) && le.ResultCode < ldap.ErrorNetwork:
		return "rejected"
	default:
		return "error"
	}
}

func (m *Metrics) setServerUp(server string, up bool) {
	if m == nil {
		return
	}
	v := 0.0
	if up {
		v = 1
	}
	m.serverUp.WithLabelValues(server).Set(v)
}

func (m *Metrics) setPool(name string, open, idle int) {
	if m == nil {
		return
	}
	m.poolConns.WithLabelValues(name, "open").Set(float64(open))
	m.poolConns.WithLabelValues(name, "idle").Set(float64(idle))
}
