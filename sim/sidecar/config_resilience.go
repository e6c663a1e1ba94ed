package sidecar

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	faultv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	httpopts "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	xdstype "github.com/envoyproxy/go-control-plane/envoy/type/v3"
)

var envoyGroup = regexp.MustCompile(`\\(\d)`)

const (
	faultFilterName     = "envoy.filters.http.fault"
	httpProtocolOptions = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
)

// perMillion converts a fault's FractionalPercent to millionths. An unset
// percentage is 0%: Envoy reads the proto's default, numerator 0
// (source/extensions/filters/common/fault/fault_config.cc), and Istio's
// docs say an abort without a percentage aborts nothing; Istio's route.go
// translateFault leaves Abort.Percentage unset then.
func perMillion(p *xdstype.FractionalPercent) uint32 {
	if p == nil {
		return 0
	}
	n := uint64(p.GetNumerator())
	switch p.GetDenominator() {
	case xdstype.FractionalPercent_HUNDRED:
		n *= 10_000
	case xdstype.FractionalPercent_TEN_THOUSAND:
		n *= 100
	}
	return uint32(min(n, 1_000_000))
}

// compileRouteExtras reads the parts of a route beyond match and cluster:
// fault injection, header edits, rewrites, mirrors and hash policy.
func compileRouteExtras(cr *compiledRoute, r *route.Route, a *route.RouteAction) error {
	if any := r.GetTypedPerFilterConfig()[faultFilterName]; any != nil {
		f := &faultv3.HTTPFault{}
		if err := any.UnmarshalTo(f); err != nil {
			return err
		}
		fc := &faultConf{}
		if d := f.GetDelay(); d != nil {
			fc.delay = d.GetFixedDelay().AsDuration()
			fc.delayPerMil = perMillion(d.GetPercentage())
		}
		if ab := f.GetAbort(); ab != nil {
			if ab.GetHttpStatus() < 200 || ab.GetHttpStatus() >= 600 {
				return fmt.Errorf("fault abort http_status %d is not in [200, 600)", ab.GetHttpStatus())
			}
			fc.abortStatus = int(ab.GetHttpStatus())
			fc.abortPerMil = perMillion(ab.GetPercentage())
		}
		cr.fault = fc
	}
	edits := func(opts []*core.HeaderValueOption) (set, add [][2]string) {
		for _, o := range opts {
			kv := [2]string{o.GetHeader().GetKey(), o.GetHeader().GetValue()}
			if o.GetAppendAction() == core.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD {
				add = append(add, kv)
			} else {
				set = append(set, kv)
			}
		}
		return set, add
	}
	cr.headers.reqSet, cr.headers.reqAdd = edits(r.GetRequestHeadersToAdd())
	cr.headers.respSet, cr.headers.respAdd = edits(r.GetResponseHeadersToAdd())
	cr.headers.reqRemove = r.GetRequestHeadersToRemove()
	cr.headers.respRemove = r.GetResponseHeadersToRemove()

	cr.prefixRewrite = a.GetPrefixRewrite()
	if rr := a.GetRegexRewrite(); rr != nil {
		// Envoy's regex_rewrite replaces every match within the path, not the
		// whole path, and writes capture groups as \1 where Go writes ${1}.
		re, err := regexp.Compile(rr.GetPattern().GetRegex())
		if err != nil {
			return fmt.Errorf("invalid regex %q: %v", rr.GetPattern().GetRegex(), err)
		}
		cr.regexRewrite, cr.regexSubst = re, envoyGroup.ReplaceAllString(rr.GetSubstitution(), "$${$1}")
	}
	cr.hostRewrite = a.GetHostRewriteLiteral()
	for _, m := range a.GetRequestMirrorPolicies() {
		cr.mirrors = append(cr.mirrors, mirrorConf{cluster: m.GetCluster(), perMil: perMillion(m.GetRuntimeFraction().GetDefaultValue()), noSuffix: m.GetDisableShadowHostSuffixAppend()})
	}
	// Envoy combines the hashes of several policies; Istio sends one, and
	// the sidecar hashes one header: anything else is refused.
	switch hp := a.GetHashPolicy(); {
	case len(hp) > 1:
		return fmt.Errorf("%d hash policies: only one is supported", len(hp))
	case len(hp) == 1 && hp[0].GetHeader() == nil:
		return fmt.Errorf("hash policy %T is not supported (only header)", hp[0].GetPolicySpecifier())
	case len(hp) == 1:
		cr.hashHeader = strings.ToLower(hp[0].GetHeader().GetHeaderName())
	}
	return nil
}

// compileClusterExtras reads circuit breakers, outlier detection and upstream HTTP options.
func compileClusterExtras(cc *clusterConf, c *cluster.Cluster) error {
	for _, t := range c.GetCircuitBreakers().GetThresholds() {
		if t.GetPriority() != core.RoutingPriority_DEFAULT {
			continue // routes of HIGH priority are refused, so these never apply
		}
		if t.GetRetryBudget() != nil {
			return errors.New("circuit_breakers retry_budget is not supported")
		}
		set := func(dst *uint64, v interface{ GetValue() uint32 }, present bool) {
			if present {
				*dst = uint64(v.GetValue())
			}
		}
		set(&cc.limits.maxConnections, t.GetMaxConnections(), t.GetMaxConnections() != nil)
		set(&cc.limits.maxPending, t.GetMaxPendingRequests(), t.GetMaxPendingRequests() != nil)
		set(&cc.limits.maxRequests, t.GetMaxRequests(), t.GetMaxRequests() != nil)
		set(&cc.limits.maxRetries, t.GetMaxRetries(), t.GetMaxRetries() != nil)
	}
	if o := c.GetOutlierDetection(); o != nil {
		// Only consecutive-error detection is implemented. Success-rate
		// detection is on unless enforcing_success_rate is 0 (its default
		// is 100; Istio sets 0), failure-percentage detection only when
		// enforced (default 0): either on is refused, not ignored.
		switch {
		case o.GetEnforcingSuccessRate() == nil || o.GetEnforcingSuccessRate().GetValue() > 0:
			return errors.New("outlier_detection: success-rate detection is not supported (set enforcing_success_rate 0)")
		case o.GetEnforcingFailurePercentage().GetValue() > 0 || o.GetEnforcingFailurePercentageLocalOrigin().GetValue() > 0:
			return errors.New("outlier_detection: failure-percentage detection is not supported")
		case o.GetSplitExternalLocalOriginErrors():
			return errors.New("outlier_detection: split_external_local_origin_errors is not supported")
		}
		oc := &outlierConf{
			consecutive5xx: 5, consecutiveGateway: 5, enforce5xx: 100, enforceGateway: 0,
			interval: 10 * time.Second, baseEjection: 30 * time.Second, maxEjection: 300 * time.Second,
			maxEjectionPercent: 10,
		}
		if v := o.GetConsecutive_5Xx(); v != nil {
			oc.consecutive5xx = v.GetValue()
		}
		if v := o.GetEnforcingConsecutive_5Xx(); v != nil {
			oc.enforce5xx = v.GetValue()
		}
		if v := o.GetConsecutiveGatewayFailure(); v != nil {
			oc.consecutiveGateway = v.GetValue()
		}
		if v := o.GetEnforcingConsecutiveGatewayFailure(); v != nil {
			oc.enforceGateway = v.GetValue()
		}
		if v := o.GetInterval(); v != nil {
			oc.interval = v.AsDuration()
		}
		if v := o.GetBaseEjectionTime(); v != nil {
			oc.baseEjection = v.AsDuration()
		}
		if v := o.GetMaxEjectionTime(); v != nil {
			oc.maxEjection = v.AsDuration()
		}
		if v := o.GetMaxEjectionPercent(); v != nil {
			oc.maxEjectionPercent = min(v.GetValue(), 100)
		}
		if oc.interval <= 0 {
			return fmt.Errorf("outlier_detection.interval must be greater than 0")
		}
		cc.outlier = oc
	}
	if a := c.GetTypedExtensionProtocolOptions()[httpProtocolOptions]; a != nil {
		po := &httpopts.HttpProtocolOptions{}
		if err := a.UnmarshalTo(po); err != nil {
			return err
		}
		if n := po.GetCommonHttpProtocolOptions().GetMaxRequestsPerConnection(); n != nil {
			cc.maxRequestsPerConn = n.GetValue()
		}
		if d := po.GetCommonHttpProtocolOptions().GetIdleTimeout(); d != nil {
			cc.idleTimeout = d.AsDuration()
		}
		proto, err := compileUpstreamProto(po)
		if err != nil {
			return err
		}
		cc.proto = proto
	}
	return nil
}
