// Package xdsgen translates the registry and Istio resources into the Envoy
// xDS resources istiod would send each proxy: clusters, endpoints, listeners
// and routes, named and shaped as Istio's pilot/pkg/networking/core does
// (the names themselves are sim/istionames').
// It knows nothing of gRPC: it produces snapshots for the xDS server.
package xdsgen
