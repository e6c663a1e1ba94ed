package docker_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/meshbench/meshbench/sim/docker"
	"github.com/meshbench/meshbench/sim/meshconfig"
	"github.com/meshbench/meshbench/sim/registry"
	"github.com/meshbench/meshbench/sim/runtime"
)

// accessLogFile is refused on docker, before anything starts, until the
// sidecars' output is collected into the run folder.
func TestAccessLogFileUnsupported(t *testing.T) {
	var cfg meshconfig.Config
	cfg.Mesh.AccessLog = meshconfig.AccessLog{File: "/dev/stdout"}
	_, err := docker.Runtime{}.Start(context.Background(), runtime.Spec{Topology: registry.DefaultTopology(), Config: cfg})
	assert.ErrorIs(t, err, runtime.ErrUnsupported)
}
