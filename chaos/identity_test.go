package chaos

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestIdentityFaultsAreNotSupportedYet(t *testing.T) {
	_, err := Identity{Mode: "expired"}.Inject(t.Context(), Target{})
	require.ErrorIs(t, err, ErrNotSupportedYet)
	require.ErrorContains(t, err, "topology's cert", "says what to use instead")
}
