package sidecar

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// A request-URI sent unparsed must be what url.Parse and URL.RequestURI
// would have written: every byte in the path and in the query, and the
// shapes around them.
func TestPlainRequestURIIsWhatURLParseWrites(t *testing.T) {
	uris := []string{"/", "/pay", "/pay?", "/pay?a=1&b=2", "//pay", "/a/../b", "*", "", "pay", "/a%2Fb", "/a?b#c", "/a#b", "/a?b?c"}
	for c := 0; c < 256; c++ {
		uris = append(uris, "/a"+string([]byte{byte(c)})+"b", "/a?q"+string([]byte{byte(c)})+"r", "/a"+string([]byte{byte(c)}))
	}
	plain := 0
	for _, uri := range uris {
		if !plainRequestURI(uri) {
			continue
		}
		plain++
		u, err := url.Parse("http://10.0.0.1:80" + uri)
		if err != nil {
			t.Errorf("%q: sent unparsed, but url.Parse fails: %v", uri, err)
			continue
		}
		if got := u.RequestURI(); got != uri {
			t.Errorf("%q: sent unparsed, but url.Parse writes %q", uri, got)
		}
	}
	if plain < 100 {
		t.Fatalf("only %d of %d request-URIs go unparsed", plain, len(uris))
	}
	for _, uri := range []string{"//pay", "*", "", "/a%2Fb", "/a?b#c", "/a b", "/a?b c"} {
		if plainRequestURI(uri) {
			t.Errorf("%q goes unparsed", uri)
		}
	}
}

// writeCounter counts the writes it takes. It is not an io.ByteWriter, so
// that Request.Write buffers what it writes, as the transport does.
type writeCounter struct {
	writes int
	buf    bytes.Buffer
}

func (w *writeCounter) Write(p []byte) (int, error) {
	w.writes++
	return w.buf.Write(p)
}

// A buffered body goes out with its headers in one write, as it does from
// http.NewRequestWithContext: the transport flushes the headers on their
// own for a body it does not know to be in memory.
func TestUpstreamRequestWritesHeadersAndBodyTogether(t *testing.T) {
	body := []byte(`{"amount":42}`)
	ur := &upstreamRequest{method: http.MethodPost, uri: "/pay?x=1", host: "payment", header: http.Header{"Content-Type": {"application/json"}}, body: body,
		getBody: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }}
	req, err := ur.newRequest(context.Background(), "http", "10.0.0.1:8080", &try{})
	if err != nil {
		t.Fatal(err)
	}
	var w writeCounter
	if err := req.Write(&w); err != nil {
		t.Fatal(err)
	}
	want := "POST /pay?x=1 HTTP/1.1\r\nHost: payment\r\n"
	if got := w.buf.String(); !strings.HasPrefix(got, want) || !strings.HasSuffix(got, "\r\n\r\n"+string(body)) || !strings.Contains(got, "Content-Length: 13\r\n") {
		t.Fatalf("request written as %q", got)
	}
	if w.writes != 1 {
		t.Fatalf("request written in %d writes, want 1", w.writes)
	}
	again, err := req.GetBody()
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(again); !bytes.Equal(b, body) {
		t.Fatalf("GetBody gives %q", b)
	}
}
