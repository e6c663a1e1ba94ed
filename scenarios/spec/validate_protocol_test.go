package spec

import (
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A service's protocol names its port as Istio reads it
// (pkg/config/kube/conversion.go ConvertProtocol): HTTP, HTTP/2, gRPC and
// TCP ports (tcp, tcp-<suffix>, mongo by appProtocol, mysql-less 3306) load;
// a sniffed port, TLS or a name that is no port name is refused at its
// line, as is a gRPC error code that is no gRPC status.
func TestServiceProtocols(t *testing.T) {
	good := `name: protocols
topology:
  services:
    - name: order
      versions: [{name: v1}]
      calls: [payment, echo, web, db, mongo, mysql]
    - name: payment
      protocol: grpc
      versions: [{name: v1, errorRate: 0.1, grpcErrorCode: 8}]
    - name: echo
      port: 81
      protocol: http
      appProtocol: kubernetes.io/h2c
      versions: [{name: v1}]
    - name: web
      port: 82
      protocol: grpc-web
      versions: [{name: v1}]
    - name: db
      port: 5432
      protocol: tcp-postgres
      versions: [{name: v1}]
    - name: mongo
      port: 27018
      appProtocol: mongo
      versions: [{name: v1}]
    - name: mysql
      port: 3306
      protocol: sql
      versions: [{name: v1}]
load: {target: order, rate: 10/s, duration: 1s}
expect:
  - successRate: {min: 0.5}
`
	_, err := LoadFS(fstest.MapFS{"g.yaml": {Data: []byte(good)}}, "g.yaml", "g.yaml")
	require.NoError(t, err)

	bad := `name: protocols
topology:
  services:
    - name: order
      versions: [{name: v1}]
      calls: [payment]
    - name: payment
      protocol: tls
      versions: [{name: v1, grpcErrorCode: 17}]
    - name: sniffed
      protocol: web
      versions: [{name: v1}]
    - name: named
      protocol: Grpc_Echo
      versions: [{name: v1}]
    - name: app
      appProtocol: https
      versions: [{name: v1}]
    - name: db
      protocol: tcp
      calls: [app]
      versions: [{name: v1, calls: [app]}]
load: {target: db, rate: 10/s, duration: 1s}
expect:
  - successRate: {min: 0.5}
`
	_, err = LoadFS(fstest.MapFS{"b.yaml": {Data: []byte(bad)}}, "b.yaml", "b.yaml")
	require.Error(t, err)
	msg := err.Error()
	assert.Contains(t, msg, `b.yaml:8: topology.services[1].protocol: protocol "tls" is TLS to Istio`)
	assert.Contains(t, msg, `b.yaml:9: topology.services[1].versions[0].grpcErrorCode: grpcErrorCode 17 is not a gRPC status`)
	assert.Contains(t, msg, `b.yaml:11: topology.services[2].protocol: protocol "web" is UnsupportedProtocol to Istio`)
	assert.Contains(t, msg, `b.yaml:14: topology.services[3].protocol: invalid protocol "Grpc_Echo"`)
	assert.Contains(t, msg, `b.yaml:17: topology.services[4].appProtocol: protocol "https" is HTTPS to Istio`)
	assert.Contains(t, msg, `b.yaml:21: topology.services[5].calls: db is a TCP service (fakesvc's TCP echo), which calls nothing`)
	assert.Contains(t, msg, `b.yaml:22: topology.services[5].versions[0].calls: db is a TCP service`)
	assert.Contains(t, msg, `b.yaml:23: load.target: target "db" is a TCP service`)
}

// A VirtualService's http routes for a TCP service would be ignored by
// Istio, and destinationSubnets is not translated: both are refused.
func TestTCPRoutesRefused(t *testing.T) {
	src := `name: tcp-routes
topology:
  services:
    - name: order
      versions: [{name: v1}]
      calls: [db]
    - name: db
      port: 5432
      protocol: tcp
      versions: [{name: v1}]
mesh:
  - apiVersion: networking.istio.io/v1
    kind: VirtualService
    metadata: {name: db}
    spec:
      hosts: [db]
      http:
        - route: [{destination: {host: db}}]
      tcp:
        - match: [{destinationSubnets: [10.0.0.0/8]}]
          route: [{destination: {host: db}}]
load: {target: order, rate: 10/s, duration: 1s}
`
	_, err := LoadFS(fstest.MapFS{"t.yaml": {Data: []byte(src)}}, "t.yaml", "t.yaml")
	require.Error(t, err)
	msg := err.Error()
	assert.Contains(t, msg, `t.yaml:17: mesh[0].spec.http: db is a TCP service`)
	assert.Contains(t, msg, `t.yaml:20: mesh[0].spec.tcp[0].match[0].destinationSubnets: destinationSubnets is not supported`)
}

// delay and abort are HTTP route faults: aimed at a TCP service, refused.
func TestRouteFaultOnTCPServiceRefused(t *testing.T) {
	src := `name: tcp-chaos
topology:
  services:
    - name: order
      calls: [db]
      versions: [{name: v1}]
    - name: db
      port: 5432
      protocol: tcp
      versions: [{name: v1}]
load: {target: order, rate: 10/s, duration: 2s}
chaos:
  - fault: {type: delay, delay: 10ms, percent: 50}
    target: {service: db}
expect:
  - successRate: {min: 0.5}
`
	_, err := LoadFS(fstest.MapFS{"c.yaml": {Data: []byte(src)}}, "c.yaml", "c.yaml")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `c.yaml:14: chaos[0].target.service: db is a TCP service: delay and abort act on HTTP routes`)
}

// grpcCall says how a caller makes its gRPC calls; a bad method, stream parameters on a unary call or a grpcCall on a
// caller of no gRPC service are refused at their line.
func TestGRPCCallValidation(t *testing.T) {
	good := `name: grpc-call
topology:
  services:
    - name: order
      calls: [payment]
      grpcCall: {deadline: 100ms}
      versions:
        - name: v1
        - {name: v2, grpcCall: {method: Stream, count: 10, interval: 100ms}}
    - name: payment
      protocol: grpc
      versions: [{name: v1}]
load: {target: order, rate: 10/s, duration: 1s}
expect:
  - successRate: {min: 0.5}
`
	sc, err := LoadFS(fstest.MapFS{"g.yaml": {Data: []byte(good)}}, "g.yaml", "g.yaml")
	require.NoError(t, err)
	order := sc.Topology.Services[0]
	assert.Equal(t, "100ms", order.GRPCCallOf("v1").Deadline.D().String())
	assert.Equal(t, 10, order.GRPCCallOf("v2").Count)

	bad := `name: grpc-call
topology:
  services:
    - name: order
      calls: [payment, web]
      grpcCall: {method: Bidi}
      versions:
        - {name: v1, grpcCall: {count: 3}}
        - {name: v2, calls: [web], grpcCall: {deadline: 1s}}
    - name: payment
      protocol: grpc
      versions: [{name: v1}]
    - name: web
      versions: [{name: v1}]
load: {target: order, rate: 10/s, duration: 1s}
expect:
  - successRate: {min: 0.5}
`
	_, err = LoadFS(fstest.MapFS{"b.yaml": {Data: []byte(bad)}}, "b.yaml", "b.yaml")
	require.Error(t, err)
	msg := err.Error()
	assert.Contains(t, msg, `b.yaml:6: topology.services[0].grpcCall.method: method "Bidi" is not one of the echo service's`)
	assert.Contains(t, msg, `b.yaml:8: topology.services[0].versions[0].grpcCall.count: count applies to method Stream only`)
	assert.Contains(t, msg, `b.yaml:9: topology.services[0].versions[1].grpcCall: grpcCall applies to gRPC calls, and none of [web] is a gRPC service`)
}
