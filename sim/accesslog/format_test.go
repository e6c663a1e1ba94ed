package accesslog

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseRefusesWhatIsNotImplemented(t *testing.T) {
	for in, want := range map[string]string{
		"%UPSTREAM_PEER_URI_SAN%":     "unsupported access log command operator %UPSTREAM_PEER_URI_SAN%",
		"%START_TIME(%s)%":            "%START_TIME(%s)%: arguments to START_TIME are not supported",
		"%REQ()%":                     "%REQ% needs a header name: %REQ(name)%",
		"[%DYNAMIC_METADATA(x:y)%]\n": "unsupported access log command operator %DYNAMIC_METADATA%",
	} {
		_, err := ParseText(in)
		require.Error(t, err, in)
		assert.Equal(t, want, err.Error(), in)
	}
	_, err := ParseJSONText(`{"a": 1}`)
	assert.EqualError(t, err, `label "a": only string values are supported (it is float64)`)
}

func TestFormatText(t *testing.T) {
	f, err := ParseText(`[%START_TIME%] %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %REQ(USER-AGENT):3% %RESP(X-A)% %RESPONSE_CODE% %RESPONSE_FLAGS% %DURATION% 100% %UPSTREAM_HOST%` + "\n")
	require.NoError(t, err)
	e := &Entry{
		Start: time.Date(2024, 5, 6, 7, 8, 9, 12_345_678, time.UTC), Duration: 1500 * time.Microsecond,
		Path: "/a?b=1", ReqHeader: http.Header{"User-Agent": {"curl/8"}}, Code: 503, Flags: "UF",
	}
	assert.Equal(t, "[2024-05-06T07:08:09.012Z] /a?b=1 cur - 503 UF 1 100% -\n", string(f.Append(nil, e)))
	e.ReqHeader["X-Envoy-Original-Path"] = []string{"/orig"}
	assert.Contains(t, string(f.Append(nil, e)), " /orig ")
}

func TestFormatJSON(t *testing.T) {
	f, err := ParseJSON(map[string]string{"code": "%RESPONSE_CODE%", "host": "%UPSTREAM_HOST%", "m": "x-%REQ(:METHOD)%", "ua": "%REQ(USER-AGENT)%"})
	require.NoError(t, err)
	e := &Entry{Method: "GET", Code: 200, ReqHeader: http.Header{"User-Agent": {`a"b`}}}
	assert.Equal(t, `{"code":200,"host":null,"m":"x-GET","ua":"a\"b"}`+"\n", string(f.Append(nil, e)))
}

// Istio's defaults parse: every operator they use is implemented.
func TestIstioDefaultsParse(t *testing.T) {
	_, err := ParseText(DefaultText)
	require.NoError(t, err)
	_, err = ParseJSON(DefaultJSON)
	require.NoError(t, err)
}
