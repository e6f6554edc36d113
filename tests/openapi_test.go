package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/gin-gonic/gin"
)

// openAPIPath is the document the server embeds and serves at /openapi.yaml.
var openAPIPath = filepath.Join("..", "api", "openapi.yaml")

// optionalPaths are documented operations the router may not register:
// metrics are optional and may be served on another listener.
var optionalPaths = map[string]string{
	"GET /metrics": "optional; may be served on another listener or not at all",
}

// openAPISpec is api/openapi.yaml loaded, validated and routed once per test binary.
type openAPISpec struct {
	doc    *openapi3.T
	router routers.Router
	opts   []openapi3.SchemaValidationOption
	err    error
}

var (
	openAPIOnce   sync.Once
	openAPILoaded openAPISpec
)

// loadOpenAPI returns the document, or an error when it does not load or is
// not a valid OpenAPI 3.0 document.
func loadOpenAPI() (*openAPISpec, error) {
	openAPIOnce.Do(func() { openAPILoaded = readOpenAPI() })
	if openAPILoaded.err != nil {
		return nil, fmt.Errorf("api/openapi.yaml: %w", openAPILoaded.err)
	}
	return &openAPILoaded, nil
}

func mustLoadOpenAPI(t *testing.T) *openAPISpec {
	t.Helper()
	spec, err := loadOpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

func readOpenAPI() openAPISpec {
	ctx := context.Background()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile(openAPIPath)
	if err != nil {
		return openAPISpec{err: fmt.Errorf("load: %w", err)}
	}
	if err := doc.Validate(ctx); err != nil {
		return openAPISpec{err: fmt.Errorf("not a valid OpenAPI document: %w", err)}
	}
	// The document names the default local server; tests run on random ports.
	doc.Servers = nil
	// GET /openapi.yaml is YAML text (a string schema, as Prism reads it too);
	// kin-openapi would otherwise parse it into an object first.
	openapi3filter.RegisterBodyDecoder("application/yaml", openapi3filter.PlainBodyDecoder)
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return openAPISpec{err: fmt.Errorf("router: %w", err)}
	}
	// date-time is checked by kin-openapi itself; uuid and email are opt-in.
	opts := []openapi3.SchemaValidationOption{
		openapi3.WithStringFormatValidators(map[string]openapi3.StringFormatValidator{
			"uuid":  openapi3.NewRegexpFormatValidator(openapi3.FormatOfStringForUUIDOfRFC9562),
			"email": openapi3.NewRegexpFormatValidator(openapi3.FormatOfStringForEmail),
		}),
		openapi3.SetSchemaErrorMessageCustomizer(schemaErrorMessage),
	}
	return openAPISpec{doc: doc, router: router, opts: opts}
}

// validateAgainstOpenAPI fails the test unless the response answers req as
// api/openapi.yaml says: a documented status, content type, body schema and
// headers for the operation, the headers every response carries, and for a
// method or path the document does not have, a 405 or 404 in the contract's
// error shape (or a 204 CORS preflight). t.Errorf keeps it safe from
// goroutines.
func validateAgainstOpenAPI(t *testing.T, req *http.Request, res *response) {
	t.Helper()
	spec, err := loadOpenAPI()
	if err != nil {
		t.Errorf("OpenAPI: cannot validate %s %s: %v", req.Method, req.URL.RequestURI(), err)
		return
	}
	where := fmt.Sprintf("%s %s answered %d", req.Method, req.URL.RequestURI(), res.Status)
	if problems := spec.check(req, res); len(problems) > 0 {
		t.Errorf("OpenAPI: %s, which does not match api/openapi.yaml:\n  - %s\nheaders: %v\nbody: %.500s",
			where, strings.Join(problems, "\n  - "), res.Header, res.Raw)
	}
}

func (s *openAPISpec) check(req *http.Request, res *response) []string {
	problems := conventionHeaderProblems(res.Header)
	route, params, err := s.router.FindRoute(req)
	switch {
	case req.Method == http.MethodOptions && res.Status == http.StatusNoContent:
		if res.Raw != "" {
			problems = append(problems, "a 204 preflight has a body")
		}
	case errors.Is(err, routers.ErrMethodNotAllowed):
		problems = append(problems, s.checkComponentResponse("MethodNotAllowed", http.StatusMethodNotAllowed, res)...)
	case errors.Is(err, routers.ErrPathNotFound):
		problems = append(problems, s.checkComponentResponse("NotFound", http.StatusNotFound, res)...)
	case err != nil:
		problems = append(problems, fmt.Sprintf("finding the operation: %v", err))
	default:
		problems = append(problems, s.checkOperation(req, res, route, params)...)
	}
	return problems
}

// checkOperation validates a response of a documented operation.
func (s *openAPISpec) checkOperation(req *http.Request, res *response, route *routers.Route, params map[string]string) []string {
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 res.Status,
		Header:                 res.Header,
		Body:                   io.NopCloser(strings.NewReader(res.Raw)),
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true,
			SchemaValidationOptions: s.opts},
	}
	var problems []string
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		problems = append(problems, fmt.Sprintf("operation %s: %v", route.Operation.OperationID, err))
	}
	if ref := route.Operation.Responses.Status(res.Status); ref != nil && ref.Value != nil && len(ref.Value.Content) == 0 && res.Raw != "" {
		problems = append(problems, fmt.Sprintf("operation %s: status %d is documented without a body, got one", route.Operation.OperationID, res.Status))
	}
	return problems
}

// checkComponentResponse validates an answer for a path or method the
// document does not have against one of components.responses.
func (s *openAPISpec) checkComponentResponse(name string, status int, res *response) []string {
	if res.Status != status {
		return []string{fmt.Sprintf("no such operation in the document, so want %d (components.responses.%s), got %d", status, name, res.Status)}
	}
	ref := s.doc.Components.Responses[name]
	if ref == nil || ref.Value == nil {
		return []string{fmt.Sprintf("components.responses.%s is missing", name)}
	}
	var problems []string
	for header, h := range ref.Value.Headers {
		if h.Value.Required && res.Header.Get(header) == "" {
			problems = append(problems, fmt.Sprintf("components.responses.%s: header %s missing", name, header))
		}
	}
	mt := ref.Value.Content.Get(res.Header.Get("Content-Type"))
	if mt == nil || mt.Schema == nil {
		return append(problems, fmt.Sprintf("components.responses.%s: content type %q not documented", name, res.Header.Get("Content-Type")))
	}
	var body any
	if err := json.Unmarshal([]byte(res.Raw), &body); err != nil {
		return append(problems, fmt.Sprintf("components.responses.%s: body is not JSON: %v", name, err))
	}
	if err := mt.Schema.Value.VisitJSON(body, append(slices.Clone(s.opts), openapi3.MultiErrors(), openapi3.VisitAsResponse())...); err != nil {
		problems = append(problems, fmt.Sprintf("components.responses.%s: %v", name, err))
	}
	return problems
}

// schemaErrorMessage says where the body is wrong, why, and what it held,
// on one line (kin-openapi's default dumps the whole schema).
func schemaErrorMessage(err *openapi3.SchemaError) string {
	reason := err.Reason
	if err.Origin != nil {
		reason = err.Origin.Error()
	}
	if reason == "" {
		reason = "does not match the schema's " + err.SchemaField
	}
	value, _ := json.Marshal(err.Value)
	return fmt.Sprintf("at %q: %s (got %.200s)", "/"+strings.Join(err.JSONPointer(), "/"), reason, value)
}

// conventionHeaderProblems checks the headers the document's conventions
// promise on every response.
func conventionHeaderProblems(h http.Header) []string {
	var problems []string
	if got := h.Get("Cache-Control"); got != "no-store" {
		problems = append(problems, fmt.Sprintf("got Cache-Control %q, want no-store", got))
	}
	if got := h.Get("X-Content-Type-Options"); got != "nosniff" {
		problems = append(problems, fmt.Sprintf("got X-Content-Type-Options %q, want nosniff", got))
	}
	if h.Get("X-Request-Id") == "" {
		problems = append(problems, "no X-Request-Id")
	}
	return problems
}

var ginParam = regexp.MustCompile(`[:*]([A-Za-z0-9_]+)`)

// openAPIPathOf turns gin's /sessions/:id into OpenAPI's /sessions/{id}.
func openAPIPathOf(ginPath string) string {
	return ginParam.ReplaceAllString(ginPath, "{$1}")
}

// TestOpenAPIDocumentsEveryRoute holds the router and the document to each
// other: every route gin registers is documented with its method, and every
// documented operation is registered (metrics excepted, see optionalPaths).
func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	t.Parallel()
	spec := mustLoadOpenAPI(t)
	s := newServer(t, nil)
	engine, ok := s.server.Config.Handler.(*gin.Engine)
	if !ok {
		t.Fatalf("got handler %T from buildRouter, want *gin.Engine to list its routes", s.server.Config.Handler)
	}
	registered := map[string]bool{}
	for _, r := range engine.Routes() {
		registered[r.Method+" "+openAPIPathOf(r.Path)] = true
	}
	documented := map[string]bool{}
	for path, item := range spec.doc.Paths.Map() {
		for method := range item.Operations() {
			documented[method+" "+path] = true
		}
	}
	for _, op := range slices.Sorted(maps.Keys(registered)) {
		if !documented[op] {
			t.Errorf("route %s is registered but not in api/openapi.yaml", op)
		}
	}
	for _, op := range slices.Sorted(maps.Keys(documented)) {
		if registered[op] {
			continue
		}
		if why, ok := optionalPaths[op]; ok {
			t.Logf("%s is documented but not on the API router: %s", op, why)
			continue
		}
		t.Errorf("api/openapi.yaml documents %s but the router does not register it", op)
	}
	for op := range optionalPaths {
		if !documented[op] {
			t.Errorf("optional operation %s is not in api/openapi.yaml", op)
		}
	}

	// The document checked here is the one the server serves.
	onDisk, err := os.ReadFile(openAPIPath)
	if err != nil {
		t.Fatal(err)
	}
	res := s.newClient(t).do("GET", "/openapi.yaml", nil).want(t, 200)
	if !bytes.Equal([]byte(res.Raw), onDisk) {
		t.Fatal("GET /openapi.yaml differs from api/openapi.yaml")
	}
}

// TestOpenAPIValidatorRejectsWrongAnswers proves that the hook in client.do
// would catch a response that drifts from the document.
func TestOpenAPIValidatorRejectsWrongAnswers(t *testing.T) {
	t.Parallel()
	spec := mustLoadOpenAPI(t)
	okHeaders := func(contentType string, extra ...string) http.Header {
		h := http.Header{"Cache-Control": {"no-store"}, "X-Content-Type-Options": {"nosniff"}, "X-Request-Id": {"r1"}}
		if contentType != "" {
			h.Set("Content-Type", contentType)
		}
		for i := 0; i+1 < len(extra); i += 2 {
			h.Set(extra[i], extra[i+1])
		}
		return h
	}
	const user = `{"user":{"id":"3f1c2b9e-8a4d-4c1e-9b7a-2d5e6f708192","email":"a@b.c","name":"A","role":"user","disabled":false,"email_verified":false,"mfa":{"totp":false,"passkeys":0},"created_at":"2025-01-31T12:34:56Z"}}`
	cases := []struct {
		name, method, path string
		res                response
		wantOK             bool
	}{
		{"documented answer", "GET", "/me", response{Status: 200, Header: okHeaders("application/json; charset=utf-8"), Raw: user}, true},
		{"extra field", "GET", "/me", response{Status: 200, Header: okHeaders("application/json"), Raw: strings.Replace(user, `"disabled"`, `"password_hash":"x","disabled"`, 1)}, false},
		{"fractional time", "GET", "/me", response{Status: 200, Header: okHeaders("application/json"), Raw: strings.Replace(user, `56Z`, `56.5Z`, 1)}, false},
		{"id not a uuid", "GET", "/me", response{Status: 200, Header: okHeaders("application/json"), Raw: strings.Replace(user, `3f1c2b9e-`, `x`, 1)}, false},
		{"undocumented status", "GET", "/me", response{Status: 418, Header: okHeaders("application/json"), Raw: `{"error":"not_found","message":"m"}`}, false},
		{"wrong error code", "GET", "/me", response{Status: 401, Header: okHeaders("application/json"), Raw: `{"error":"forbidden","message":"m"}`}, false},
		{"no Retry-After", "POST", "/login", response{Status: 429, Header: okHeaders("application/json"), Raw: `{"error":"too_many_requests","message":"m"}`}, false},
		{"no Cache-Control", "GET", "/healthz", response{Status: 200, Header: http.Header{"Content-Type": {"application/json"}, "X-Content-Type-Options": {"nosniff"}, "X-Request-Id": {"r"}}, Raw: `{"status":"ok"}`}, false},
		{"body on 204", "DELETE", "/sessions/abc", response{Status: 204, Header: okHeaders("application/json"), Raw: `{}`}, false},
		{"405 with Allow", "GET", "/login", response{Status: 405, Header: okHeaders("application/json", "Allow", "POST"), Raw: `{"error":"method_not_allowed","message":"m"}`}, true},
		{"405 without Allow", "GET", "/login", response{Status: 405, Header: okHeaders("application/json"), Raw: `{"error":"method_not_allowed","message":"m"}`}, false},
		{"unknown path 404", "GET", "/nope", response{Status: 404, Header: okHeaders("application/json"), Raw: `{"error":"not_found","message":"m"}`}, true},
		{"unknown path 200", "GET", "/nope", response{Status: 200, Header: okHeaders("application/json"), Raw: `{}`}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, "http://127.0.0.1:1"+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			problems := spec.check(req, &tc.res)
			if got := len(problems) == 0; got != tc.wantOK {
				t.Fatalf("got valid=%v, want %v; problems: %q", got, tc.wantOK, problems)
			}
		})
	}
}
