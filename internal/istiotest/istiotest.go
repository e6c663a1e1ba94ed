// Package istiotest builds the Istio objects tests hand to the
// translator, the sidecar and the control plane: the object with its name
// and namespace around a spec, and the spec fragments most tests repeat
// (subsets by version, PeerAuthentication modes). The spec is copied in
// with proto.Merge, since a spec holds a proto message that must not be
// copied by value.
package istiotest

import (
	"google.golang.org/protobuf/proto"
	networking "istio.io/api/networking/v1alpha3"
	security "istio.io/api/security/v1beta1"
	typev1beta1 "istio.io/api/type/v1beta1"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// VirtualService is namespace/name with spec.
func VirtualService(namespace, name string, spec *networking.VirtualService) *networkingv1.VirtualService {
	out := &networkingv1.VirtualService{ObjectMeta: meta(namespace, name)}
	proto.Merge(&out.Spec, spec)
	return out
}

// DestinationRule is namespace/name with spec.
func DestinationRule(namespace, name string, spec *networking.DestinationRule) *networkingv1.DestinationRule {
	out := &networkingv1.DestinationRule{ObjectMeta: meta(namespace, name)}
	proto.Merge(&out.Spec, spec)
	return out
}

// PeerAuthentication is namespace/name with spec.
func PeerAuthentication(namespace, name string, spec *security.PeerAuthentication) *securityv1.PeerAuthentication {
	out := &securityv1.PeerAuthentication{ObjectMeta: meta(namespace, name)}
	proto.Merge(&out.Spec, spec)
	return out
}

// AuthorizationPolicy is namespace/name with spec.
func AuthorizationPolicy(namespace, name string, spec *security.AuthorizationPolicy) *securityv1.AuthorizationPolicy {
	out := &securityv1.AuthorizationPolicy{ObjectMeta: meta(namespace, name)}
	proto.Merge(&out.Spec, spec)
	return out
}

// VersionSubsets are one subset per version, each selecting its pods by
// the label version=<name>, as Istio's samples write them.
func VersionSubsets(versions ...string) []*networking.Subset {
	out := make([]*networking.Subset, 0, len(versions))
	for _, v := range versions {
		out = append(out, &networking.Subset{Name: v, Labels: map[string]string{"version": v}})
	}
	return out
}

// MTLS is a PeerAuthentication spec: mode for the workloads selector
// selects (nil: every workload of its namespace, or of the mesh in the
// root namespace), and a mode per port. UNSET leaves the mode out.
func MTLS(mode security.PeerAuthentication_MutualTLS_Mode, selector map[string]string, ports map[uint32]security.PeerAuthentication_MutualTLS_Mode) *security.PeerAuthentication {
	spec := &security.PeerAuthentication{}
	if mode != security.PeerAuthentication_MutualTLS_UNSET {
		spec.Mtls = &security.PeerAuthentication_MutualTLS{Mode: mode}
	}
	if selector != nil {
		spec.Selector = &typev1beta1.WorkloadSelector{MatchLabels: selector}
	}
	for p, m := range ports {
		if spec.PortLevelMtls == nil {
			spec.PortLevelMtls = map[uint32]*security.PeerAuthentication_MutualTLS{}
		}
		spec.PortLevelMtls[p] = &security.PeerAuthentication_MutualTLS{Mode: m}
	}
	return spec
}

func meta(namespace, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: namespace}
}
