package protoyaml

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// protojson is the final decoder; its errors are mapped back to the key they quote.
func TestProtoErrorLine(t *testing.T) {
	var doc yaml.Node
	require.NoError(t, yaml.Unmarshal([]byte("hosts: [payment]\nhttp:\n  - retries:\n      atempts: 3\n"), &doc))
	var got []string
	c := &Converter{Report: func(line int, field, msg string) {
		got = append(got, fmt.Sprintf("%d %s %s", line, field, msg))
	}}
	c.protoError(doc.Content[0], "spec", errors.New("proto:\u00a0(line 1:40): unknown field \"atempts\""))
	assert.Equal(t, []string{`4 spec.http[0].retries.atempts unknown field "atempts"`}, got)
	assert.True(t, c.Failed)
}
