// Package meshconfig holds the Istio resources a scenario applies to the mesh,
// as the istio.io/client-go types, each with the place it was read from.
package meshconfig

import (
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
)

// Config is the set of Istio resources in force.
type Config struct {
	VirtualServices  []*networkingv1.VirtualService
	DestinationRules []*networkingv1.DestinationRule
	Gateways         []*networkingv1.Gateway
	// Origin maps "Kind/namespace/name" to "file:line" where the resource was read.
	Origin map[string]string
}

// Key names a resource in Origin.
func Key(kind, namespace, name string) string { return kind + "/" + namespace + "/" + name }
