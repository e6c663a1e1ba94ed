package xdsgen

import (
	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	filev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/file/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcpproxy "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/meshbench/meshbench/sim/accesslog"
	"github.com/meshbench/meshbench/sim/meshconfig"
)

// FileAccessLog is meshConfig's file access log as istiod builds it
// (FileAccessLogFromMeshConfig in pilot/pkg/model/telemetry_logging.go):
// envoy.access_loggers.file to the path, with TEXT the format string
// (Istio's EnvoyTextLogFormat when empty, a newline added if missing), with
// JSON the labels (EnvoyJSONLogFormatIstio when empty or when the format
// does not parse as a JSON object) and sort_properties false. Nil when
// accessLogFile is empty.
func FileAccessLog(a meshconfig.AccessLog) *accesslogv3.AccessLog {
	if a.File == "" {
		return nil
	}
	sf := &core.SubstitutionFormatString{}
	if a.JSON {
		sf.Format = &core.SubstitutionFormatString_JsonFormat{JsonFormat: jsonLabels(a.Format)}
		//lint:ignore SA1019 istiod sets the deprecated field (FileAccessLogFromMeshConfig).
		sf.JsonFormatOptions = &core.JsonFormatOptions{SortProperties: false}
	} else {
		sf.Format = &core.SubstitutionFormatString_TextFormatSource{TextFormatSource: &core.DataSource{
			Specifier: &core.DataSource_InlineString{InlineString: accesslog.TextFormat(a.Format)},
		}}
	}
	fl := &filev3.FileAccessLog{Path: a.File, AccessLogFormat: &filev3.FileAccessLog_LogFormat{LogFormat: sf}}
	return &accesslogv3.AccessLog{Name: wellknown.FileAccessLog, ConfigType: &accesslogv3.AccessLog_TypedConfig{TypedConfig: mustAny(fl)}}
}

// jsonLabels is accessLogFormat as a Struct, or Istio's default labels.
func jsonLabels(format string) *structpb.Struct {
	if format != "" {
		s := &structpb.Struct{}
		if protojson.Unmarshal([]byte(format), s) == nil {
			return s
		}
	}
	fields := make(map[string]any, len(accesslog.DefaultJSON))
	for k, v := range accesslog.DefaultJSON {
		fields[k] = v
	}
	s, _ := structpb.NewStruct(fields)
	return s
}

// withAccessLog adds the mesh's file access log to every HTTP connection
// manager and tcp_proxy of ls, as istiod's setHTTPAccessLog and
// setTCPAccessLog do when no Telemetry resource configures logging
// (pilot/pkg/networking/core/accesslog.go: "No Telemetry API configured,
// fall back to legacy mesh config setting"). istiod's listener-level log
// (setListenerAccessLog, filtered to response flag NR) is not built.
func (g *Generator) withAccessLog(ls []*listener.Listener) []*listener.Listener {
	al := FileAccessLog(g.cfg.Mesh.AccessLog)
	if al == nil {
		return ls
	}
	for _, l := range ls {
		chains := l.GetFilterChains()
		if l.GetDefaultFilterChain() != nil {
			chains = append(chains[:len(chains):len(chains)], l.GetDefaultFilterChain())
		}
		for _, fc := range chains {
			for _, f := range fc.GetFilters() {
				addAccessLog(f, al)
			}
		}
	}
	return ls
}

// addAccessLog appends al to an HCM or tcp_proxy filter's access_log.
func addAccessLog(f *listener.Filter, al *accesslogv3.AccessLog) {
	tc := f.GetTypedConfig()
	if tc == nil {
		return
	}
	switch f.GetName() {
	case wellknown.HTTPConnectionManager:
		m := &hcm.HttpConnectionManager{}
		if tc.UnmarshalTo(m) == nil {
			m.AccessLog = append(m.AccessLog, al)
			f.ConfigType = &listener.Filter_TypedConfig{TypedConfig: mustAny(m)}
		}
	case TCPProxyFilter:
		tp := &tcpproxy.TcpProxy{}
		if tc.UnmarshalTo(tp) == nil {
			tp.AccessLog = append(tp.AccessLog, al)
			f.ConfigType = &listener.Filter_TypedConfig{TypedConfig: mustAny(tp)}
		}
	}
}
