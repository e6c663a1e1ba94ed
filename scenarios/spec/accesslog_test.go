package spec

import (
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshbench/meshbench/sim/meshconfig"
)

const accessLogTail = "load: {target: order, rate: 10/s, duration: 1s}\nexpect:\n  - successRate: {min: 0.5}\n"

func loadMeshConfig(t *testing.T, meshConfig string) (*Scenario, error) {
	t.Helper()
	return LoadFS(fstest.MapFS{"x.yaml": {Data: []byte("name: x\nmeshConfig:\n" + meshConfig + accessLogTail)}}, "x.yaml", "x.yaml")
}

// accessLogFile, accessLogEncoding and accessLogFormat reach the mesh settings.
func TestAccessLogSettingsLoad(t *testing.T) {
	sc, err := loadMeshConfig(t, "  accessLogFile: /dev/stdout\n  accessLogEncoding: JSON\n  accessLogFormat: '{\"code\": \"%RESPONSE_CODE%\"}'\n")
	require.NoError(t, err)
	assert.Equal(t, meshconfig.AccessLog{File: "/dev/stdout", JSON: true, Format: `{"code": "%RESPONSE_CODE%"}`}, sc.Config.Mesh.AccessLog)

	sc, err = loadMeshConfig(t, "  accessLogFile: /dev/stdout\n")
	require.NoError(t, err)
	assert.Equal(t, meshconfig.AccessLog{File: "/dev/stdout"}, sc.Config.Mesh.AccessLog)
}

// Bad values are refused at their line.
func TestAccessLogSettingsErrors(t *testing.T) {
	for _, c := range []struct{ meshConfig, want string }{
		{"  accessLogFile: /dev/stdout\n  accessLogEncoding: XML\n",
			`x.yaml:4: meshConfig.accessLogEncoding: accessLogEncoding "XML" is not TEXT or JSON`},
		{"  accessLogFormat: '%START_TIME%'\n",
			"x.yaml:3: meshConfig.accessLogFormat: accessLogFormat has no effect without meshConfig.accessLogFile (e.g. /dev/stdout)"},
		{"  accessLogFile: /dev/stdout\n  accessLogFormat: '[%START_TIME%] %UPSTREAM_PEER_URI_SAN%'\n",
			"x.yaml:4: meshConfig.accessLogFormat: accessLogFormat: unsupported access log command operator %UPSTREAM_PEER_URI_SAN% (implemented: "},
		{"  accessLogFile: /dev/stdout\n  accessLogEncoding: JSON\n  accessLogFormat: 'not json'\n",
			"x.yaml:5: meshConfig.accessLogFormat: accessLogFormat: not a JSON object: "},
	} {
		_, err := loadMeshConfig(t, c.meshConfig)
		require.Error(t, err, c.meshConfig)
		assert.Contains(t, err.Error(), c.want)
	}
}
