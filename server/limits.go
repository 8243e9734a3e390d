package server

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// The server's limits on connections, concurrent work and slow clients.
// Every one of them answers the client (a 503 with Retry-After, a 408)
// rather than stalling it: a client that is told to come back can, one
// that hangs cannot tell a busy server from a dead one.

// limitListener caps the connections open at once. A connection beyond the
// cap is not left in the kernel's backlog (where a client cannot tell why
// it waits) but answered at once: 503 with Retry-After, then closed.
type limitListener struct {
	net.Listener
	max        int64
	retryAfter string
	metrics    *metrics

	open      atomic.Int64
	rejecting atomic.Int64 // goroutines answering rejected connections
}

// maxRejecting bounds the goroutines answering rejected connections; past
// it a rejected connection is closed without an answer.
const maxRejecting = 64

func newLimitListener(ln net.Listener, max int, retryAfter time.Duration, m *metrics) *limitListener {
	return &limitListener{Listener: ln, max: int64(max), retryAfter: retryAfterValue(retryAfter), metrics: m}
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.open.Add(1) <= l.max {
			return &limitConn{Conn: c, l: l}, nil
		}
		l.open.Add(-1)
		l.metrics.countRejectedConn()
		l.reject(c)
	}
}

// Open is the number of connections open now.
func (l *limitListener) Open() int64 {
	if l == nil {
		return 0
	}
	return l.open.Load()
}

const rejectBody = `{"error":{"message":"the server has too many open connections: retry later","type":"service_unavailable","param":null,"code":"too_many_connections"}}` + "\n"

// reject answers c with a 503 and closes it. The request is drained (up
// to a bound) before the close, so that the client reads the answer rather
// than a reset.
func (l *limitListener) reject(c net.Conn) {
	if l.rejecting.Add(1) > maxRejecting {
		l.rejecting.Add(-1)
		c.Close()
		return
	}
	go func() {
		defer l.rejecting.Add(-1)
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(time.Second))
		_, err := fmt.Fprintf(c, "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: %s\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s",
			l.retryAfter, len(rejectBody), rejectBody)
		if err != nil {
			return
		}
		if tc, ok := c.(interface{ CloseWrite() error }); ok {
			_ = tc.CloseWrite()
		}
		_, _ = io.CopyN(io.Discard, c, 1<<16)
	}()
}

type limitConn struct {
	net.Conn
	l    *limitListener
	once sync.Once
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.open.Add(-1) })
	return err
}

// retryAfterValue is a Retry-After in whole seconds, at least 1.
func retryAfterValue(d time.Duration) string {
	return strconv.Itoa(max(1, int((d+time.Second-1)/time.Second)))
}

// acquire takes one of the MaxActiveRequests slots, or answers 503 with
// Retry-After and returns false. The caller releases the slot it got.
func (s *Server) acquire(w http.ResponseWriter) bool {
	select {
	case s.active <- struct{}{}:
		return true
	default:
	}
	w.Header().Set("Retry-After", retryAfterValue(s.cfg.RetryAfter))
	writeError(w, &apiError{Status: http.StatusServiceUnavailable, Type: typeUnavailable, Code: "overloaded",
		Message: fmt.Sprintf("the server is serving its limit of %d requests at once: retry later", s.cfg.MaxActiveRequests)})
	return false
}

func (s *Server) release() { <-s.active }

// readBody reads the request body within the size cap and the body read
// timeout. The deadline is lifted once the body is in: scoring may take
// minutes, and the connection's read side must stay open meanwhile to
// notice a client that leaves.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(s.cfg.BodyReadTimeout))
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	_ = rc.SetReadDeadline(time.Time{})
	if err == nil {
		return data, nil
	}
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return nil, &apiError{Status: http.StatusRequestEntityTooLarge, Type: typeInvalidRequest, Code: "request_too_large",
			Message: fmt.Sprintf("the request body is over this server's limit of %d bytes", s.cfg.MaxBodyBytes)}
	case errors.Is(err, os.ErrDeadlineExceeded):
		return nil, &apiError{Status: http.StatusRequestTimeout, Type: typeInvalidRequest, Code: "request_timeout",
			Message: fmt.Sprintf("the request body did not arrive within this server's limit of %v", s.cfg.BodyReadTimeout)}
	case errors.Is(err, io.ErrUnexpectedEOF) || r.Context().Err() != nil:
		return nil, errClientGone
	}
	return nil, badRequest("", "invalid_body", "reading the request body: %v", err)
}
