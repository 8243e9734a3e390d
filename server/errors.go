package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// apiError is an error a handler reports to the client as an OpenAI-style
// error object: {"error": {"message", "type", "param", "code"}}. Clients of
// the OpenAI API (the openai SDKs, lm-eval-harness) read these fields, so the
// shape and the types below follow OpenAI's.
type apiError struct {
	Status  int    // HTTP status
	Message string // what went wrong, naming the field and value
	Type    string // invalid_request_error, server_error, ...
	Param   string // the request field at fault, or ""
	Code    string // a stable machine-readable code, or ""
}

func (e *apiError) Error() string { return e.Message }

// Error types, as OpenAI names them.
const (
	typeInvalidRequest = "invalid_request_error"
	typeNotFound       = "not_found_error"
	typeServer         = "server_error"
	typeUnavailable    = "service_unavailable"
	typeModel          = "model_error" // the model computed something unusable (NaN, +Inf)
)

// statusClientClosed is nginx's 499: the client closed the connection
// before the answer was written. Counted apart from the 5xx, since the
// server did nothing wrong; nobody reads the body.
const statusClientClosed = 499

func badRequest(param, code, format string, args ...any) *apiError {
	return &apiError{Status: http.StatusBadRequest, Message: fmt.Sprintf(format, args...), Type: typeInvalidRequest, Param: param, Code: code}
}

func serverFault(format string, args ...any) *apiError {
	return &apiError{Status: http.StatusInternalServerError, Message: fmt.Sprintf(format, args...), Type: typeServer, Code: "internal_error"}
}

// errShuttingDown answers requests that reach the batcher after it stopped.
var errShuttingDown = &apiError{Status: http.StatusServiceUnavailable, Message: "the server is shutting down", Type: typeUnavailable, Code: "shutting_down"}

// errClientGone answers (to nobody) a request whose client left.
var errClientGone = &apiError{Status: statusClientClosed, Message: "the client closed the connection", Type: typeInvalidRequest, Code: "client_closed_request"}

// errorBody is the JSON of an error response. Param and Code are null when
// empty, as OpenAI sends them.
type errorBody struct {
	Error struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    *string `json:"code"`
	} `json:"error"`
}

// writeError sends err as an OpenAI error object. An error that is not an
// *apiError is a server fault: its text still goes to the client, since this
// server holds no secrets and the text is what makes a fault debuggable.
func writeError(w http.ResponseWriter, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		ae = serverFault("%v", err)
	}
	if ae.Status == http.StatusRequestTimeout {
		w.Header().Set("Connection", "close")
	}
	var body errorBody
	body.Error.Message = ae.Message
	body.Error.Type = ae.Type
	if ae.Param != "" {
		body.Error.Param = &ae.Param
	}
	if ae.Code != "" {
		body.Error.Code = &ae.Code
	}
	writeJSON(w, ae.Status, body)
}

// writeJSON sends v with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		// Only a bug in a response type can get here; say so plainly.
		status = http.StatusInternalServerError
		data = []byte(`{"error":{"message":"encoding the response failed","type":"server_error","param":null,"code":"internal_error"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(data, '\n'))
}
