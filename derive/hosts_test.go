package derive

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// A host names a service of the topology as istiod resolves it: the short
// name or the FQDN; "payment.default" and "payment.default.svc" are taken
// as written and name none.
func TestServiceNameResolvesHostsAsIstiod(t *testing.T) {
	d := &deriver{plan: &Plan{Topology: Topology{Namespace: "default"}}}
	for host, want := range map[string]string{
		"payment":                           "payment",
		"payment.default.svc.cluster.local": "payment",
		"payment.default":                   "",
		"payment.default.svc":               "",
		"payment.other.svc.cluster.local":   "",
		"*.default.svc.cluster.local":       "",
		"":                                  "",
	} {
		name, ok := d.serviceName(host)
		assert.Equal(t, want != "", ok, host)
		assert.Equal(t, want, name, host)
	}
}
