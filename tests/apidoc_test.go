package tests

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/sessionauth/api/config"
)

// apiDocPath is the human API reference, kept in step with api/openapi.yaml.
var apiDocPath = filepath.Join("..", "docs", "api.md")

var (
	// docEndpoint is an endpoint's heading in docs/api.md: ### `POST /login`.
	docEndpoint = regexp.MustCompile("(?m)^#{2,4} `([A-Z]+) (/[^` ]*)`")
	// docErrorRow is a row of the error table in docs/api.md: | 401 | `not_authenticated` | ...
	docErrorRow = regexp.MustCompile("(?m)^\\| ([0-9]{3}) \\| `([a-z_]+)` \\|")
)

// TestAPIDocMatchesOpenAPI holds docs/api.md and api/openapi.yaml to each
// other: the same endpoints (method and path) both ways, and the same error
// codes both ways, each in the error table under a status the document gives it.
func TestAPIDocMatchesOpenAPI(t *testing.T) {
	t.Parallel()
	spec := mustLoadOpenAPI(t)
	md, err := os.ReadFile(apiDocPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, problem := range apiDocProblems(spec.doc, string(md)) {
		t.Error(problem)
	}
}

// TestDocsNameEverySetting fails when a setting the server reads has no row in
// the settings tables of docs/api.md and the README.
func TestDocsNameEverySetting(t *testing.T) {
	t.Parallel()
	read := map[string]bool{}
	_, _ = config.Load(func(key string) string { read[key] = true; return "" })
	if len(read) == 0 {
		t.Fatal("config.Load read no setting")
	}
	for _, path := range []string{apiDocPath, filepath.Join("..", "README.md")} {
		md, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, key := range slices.Sorted(maps.Keys(read)) {
			if !inFirstColumn(string(md), "`"+key+"`") {
				t.Errorf("%s: setting %s has no row of its own in a settings table", path, key)
			}
		}
	}
}

// TestEnvExampleNamesEverySetting fails when a setting the server reads is
// missing from .env.example, as KEY=value or commented out as #KEY=value.
func TestEnvExampleNamesEverySetting(t *testing.T) {
	t.Parallel()
	read := map[string]bool{}
	_, _ = config.Load(func(key string) string { read[key] = true; return "" })
	example, err := os.ReadFile(filepath.Join("..", ".env.example"))
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, line := range strings.Split(string(example), "\n") {
		if key, _, ok := strings.Cut(strings.TrimPrefix(strings.TrimSpace(line), "#"), "="); ok && !strings.Contains(key, " ") {
			listed[key] = true
		}
	}
	for _, key := range slices.Sorted(maps.Keys(read)) {
		if !listed[key] {
			t.Errorf(".env.example: setting %s is missing (add it, commented out if it has no safe example value)", key)
		}
	}
}

// TestAPIDocCheckCatchesDrift proves apiDocProblems notices each kind of drift.
func TestAPIDocCheckCatchesDrift(t *testing.T) {
	t.Parallel()
	const spec = `openapi: 3.0.3
info: {title: t, version: "1"}
paths:
  /login:
    post:
      responses:
        '200': {description: ok}
        '401':
          description: no
          content:
            application/json:
              schema: {$ref: '#/components/schemas/ErrorInvalidCredentials'}
components:
  schemas:
    ErrorInvalidCredentials:
      type: object
      properties:
        error: {type: string, enum: [invalid_credentials]}
    ErrorMethodNotAllowed:
      type: object
      properties:
        error: {type: string, enum: [method_not_allowed]}
`
	const md = "### `POST /login`\n\n| status | `error` | when |\n|---|---|---|\n" +
		"| 401 | `invalid_credentials` | wrong password |\n| 405 | `method_not_allowed` | wrong method |\n"
	doc, err := openapi3.NewLoader().LoadFromData([]byte(spec))
	if err != nil {
		t.Fatal(err)
	}
	if problems := apiDocProblems(doc, md); len(problems) > 0 {
		t.Fatalf("got problems for a reference in step: %q", problems)
	}
	cases := []struct{ name, md, want string }{
		{"endpoint missing from the reference", strings.Replace(md, "### `POST /login`", "", 1), "POST /login"},
		{"endpoint missing from the document", md + "### `GET /me`\n", "GET /me"},
		{"error code missing from the reference", strings.Replace(md, "| 405 | `method_not_allowed` | wrong method |\n", "", 1), "method_not_allowed"},
		{"error code missing from the document", md + "| 409 | `email_taken` | taken |\n", "email_taken"},
		{"error code under another status", strings.Replace(md, "| 401 | `invalid", "| 403 | `invalid", 1), "invalid_credentials"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			problems := apiDocProblems(doc, tc.md)
			if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, tc.want) }) {
				t.Fatalf("got problems %q, want one naming %s", problems, tc.want)
			}
		})
	}
}

// apiDocProblems compares the reference md with the OpenAPI document.
func apiDocProblems(doc *openapi3.T, md string) []string {
	var problems []string
	documented := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented[method+" "+path] = true
		}
	}
	described := map[string]bool{}
	for _, m := range docEndpoint.FindAllStringSubmatch(md, -1) {
		described[m[1]+" "+m[2]] = true
	}
	for _, op := range slices.Sorted(maps.Keys(documented)) {
		if !described[op] {
			problems = append(problems, fmt.Sprintf("api/openapi.yaml has %s but docs/api.md has no heading ### `%s`", op, op))
		}
	}
	for _, op := range slices.Sorted(maps.Keys(described)) {
		if !documented[op] {
			problems = append(problems, fmt.Sprintf("docs/api.md describes %s but api/openapi.yaml does not have it", op))
		}
	}

	codes := openAPIErrorCodes(doc)
	table := map[string]int{}
	for _, m := range docErrorRow.FindAllStringSubmatch(md, -1) {
		status, _ := strconv.Atoi(m[1])
		table[m[2]] = status
	}
	for _, code := range slices.Sorted(maps.Keys(codes)) {
		status, ok := table[code]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("api/openapi.yaml names error %s but the error table of docs/api.md has no row for it", code))
		case len(codes[code]) > 0 && !codes[code][status]:
			problems = append(problems, fmt.Sprintf("docs/api.md gives error %s status %d, api/openapi.yaml %v", code, status, slices.Sorted(maps.Keys(codes[code]))))
		}
	}
	for _, code := range slices.Sorted(maps.Keys(table)) {
		if _, ok := codes[code]; !ok {
			problems = append(problems, fmt.Sprintf("docs/api.md lists error %s but api/openapi.yaml names no such error", code))
		}
	}
	return problems
}

// openAPIErrorCodes returns every error code the document names (the enum of
// an error body's "error" property) with the statuses its operations answer it
// under; a code only in an unattached component has no status.
func openAPIErrorCodes(doc *openapi3.T) map[string]map[int]bool {
	codes := map[string]map[int]bool{}
	add := func(schema *openapi3.SchemaRef, status int) {
		if schema == nil || schema.Value == nil || schema.Value.Properties["error"] == nil {
			return
		}
		for _, v := range schema.Value.Properties["error"].Value.Enum {
			code := fmt.Sprint(v)
			if codes[code] == nil {
				codes[code] = map[int]bool{}
			}
			if status > 0 {
				codes[code][status] = true
			}
		}
	}
	for _, schema := range doc.Components.Schemas {
		add(schema, 0)
	}
	for _, item := range doc.Paths.Map() {
		for _, op := range item.Operations() {
			for key, res := range op.Responses.Map() {
				status, err := strconv.Atoi(key)
				if err != nil || res.Value == nil {
					continue
				}
				for _, media := range res.Value.Content {
					add(media.Schema, status)
				}
			}
		}
	}
	return codes
}

// inFirstColumn reports whether s appears in the first cell of a row of a
// Markdown table (a row may name several settings that share a default).
func inFirstColumn(md, s string) bool {
	for line := range strings.Lines(md) {
		cells := strings.Split(line, "|")
		if strings.HasPrefix(line, "|") && len(cells) > 2 && strings.Contains(cells[1], s) {
			return true
		}
	}
	return false
}
