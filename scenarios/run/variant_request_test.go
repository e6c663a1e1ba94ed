package run

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshbench/meshbench/internal/units"
	"github.com/meshbench/meshbench/scenarios/spec"
)

// Each variant's requests reach the app with the variant's method, path
// and headers, the others with the load's; only POST, PUT and PATCH
// requests carry the JSON body.
func TestVariantRequestsReachTheApp(t *testing.T) {
	type seen struct{ method, path, user, body, contentType string }
	var mu sync.Mutex
	got := map[seen]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got[seen{r.Method, r.URL.Path, r.Header.Get("end-user"), string(b), r.Header.Get("Content-Type")}]++
		mu.Unlock()
	}))
	defer srv.Close()
	sc := &scenario{Scenario: spec.Scenario{Load: spec.Load{
		Method: http.MethodPost, Path: "/orders", Rate: units.Rate{Freq: 60, Per: time.Second},
		Duration: units.Duration(400 * time.Millisecond), Timeout: units.Duration(5 * time.Second),
		Headers: map[string]string{"end-user": "anyone"},
		Variants: []spec.Variant{
			{Name: "poster", Weight: 1},
			{Name: "getter", Weight: 1, Method: http.MethodGet, Path: "/items", Headers: map[string]string{"end-user": "jason"}},
			{Name: "deleter", Weight: 1, Method: http.MethodDelete},
			{Name: "putter", Weight: 1, Method: http.MethodPut, Path: "/items"},
		},
	}}, timeLimit: time.Minute} // bounded by count, not time
	samples, _ := attack(context.Background(), srv.URL, sc, "default")

	require.Len(t, samples, 24, "15/s a variant for 400ms")
	const body = `{"item":"book","amount":42}`
	assert.Equal(t, map[seen]int{
		{http.MethodPost, "/orders", "anyone", body, "application/json"}: 6,
		{http.MethodGet, "/items", "jason", "", ""}:                      6,
		{http.MethodDelete, "/orders", "anyone", "", ""}:                 6,
		{http.MethodPut, "/items", "anyone", body, "application/json"}:   6,
	}, got)
	for _, s := range samples {
		assert.Equal(t, http.StatusOK, s.code, s.variant)
	}
}
