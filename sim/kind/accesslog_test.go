package kind

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/meshbench/meshbench/sim/meshconfig"
	"github.com/meshbench/meshbench/sim/runtime"
)

// accessLogFile is refused on kind until its lines are collected: they
// would stay in the istio-proxy containers' output.
func TestAccessLogFileUnsupported(t *testing.T) {
	cm := &unstructured.Unstructured{Object: map[string]any{"data": map[string]any{"mesh": ""}}}
	err := setMeshConfig(cm, meshconfig.MeshSettings{AccessLog: meshconfig.AccessLog{File: "/dev/stdout"}})
	require.Error(t, err)
	assert.ErrorIs(t, err, runtime.ErrUnsupported)
}
