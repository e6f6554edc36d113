package api

import (
	"errors"
	"maps"
	"testing"

	"github.com/sessionauth/api/models"
)

type bindProbe struct {
	Email    string       `json:"email"`
	Password string       `json:"password"`
	Role     *models.Role `json:"role"`
	Disabled *bool        `json:"disabled"`
	Count    int          `json:"count"`
}

func TestDecodeStrict(t *testing.T) {
	cases := []struct {
		name, body string
		invalid    bool              // invalid_json
		problems   map[string]string // validation problems, by JSON field
		check      func(bindProbe) bool
	}{
		{name: "exact keys", body: `{"email":"a@b.c","role":"user"}`, problems: map[string]string{},
			check: func(p bindProbe) bool { return p.Email == "a@b.c" && *p.Role == "user" }},
		{name: "wrong-case key is unknown and ignored", body: `{"role":"user","Role":"admin","EMAIL":"x@y.z"}`, problems: map[string]string{},
			check: func(p bindProbe) bool { return *p.Role == "user" && p.Email == "" }},
		{name: "wrong-case key alone sets nothing", body: `{"Role":"admin"}`, problems: map[string]string{},
			check: func(p bindProbe) bool { return p.Role == nil }},
		{name: "duplicate key", body: `{"role":"user","role":"admin"}`, invalid: true},
		{name: "duplicate key of an unknown member", body: `{"x":1,"x":2}`, invalid: true},
		{name: "duplicate key deep down", body: `{"email":"a@b.c","extra":{"list":[{"k":1,"k":2}]}}`, invalid: true},
		{name: "trailing data", body: `{"email":"a@b.c"} {}`, invalid: true},
		{name: "array", body: `[{"email":"a@b.c"}]`, invalid: true},
		{name: "null", body: `null`, invalid: true},
		{name: "empty", body: ``, invalid: true},
		{name: "byte order mark", body: "\xef\xbb\xbf{}", invalid: true},
		{name: "invalid UTF-8", body: "{\"email\":\"\xff@b.c\"}", invalid: true},
		{name: "lone surrogate", body: `{"email":"\ud800@b.c"}`, invalid: true},
		{name: "every wrong type at once", body: `{"email":1,"password":true,"role":[],"disabled":"yes","count":"3"}`,
			problems: map[string]string{"email": "must be a string", "password": "must be a string", "role": "must be a string",
				"disabled": "must be a boolean", "count": "must be a number"}},
		{name: "null is no value", body: `{"email":null,"role":null}`, problems: map[string]string{},
			check: func(p bindProbe) bool { return p.Email == "" && p.Role == nil }},
		{name: "NUL escaped", body: `{"email":"a\u0000@b.c","password":"fine password"}`,
			problems: map[string]string{"email": "must not contain control or invisible formatting characters"}},
		{name: "control and format characters in several fields", body: "{\"email\":\"a\\n@b.c\",\"password\":\"pass\u202eword\",\"role\":\"\\u200b\"}",
			problems: map[string]string{"email": "must not contain control or invisible formatting characters",
				"password": "must not contain control or invisible formatting characters", "role": "must not contain control or invisible formatting characters"}},
		{name: "unknown members are not checked", body: `{"email":"a@b.c","note":"tab\there"}`, problems: map[string]string{}},
		{name: "letters beyond ASCII are text", body: `{"email":"ünïcødé@b.c"}`, problems: map[string]string{},
			check: func(p bindProbe) bool { return p.Email == "ünïcødé@b.c" }},
	}
	for _, tc := range cases {
		var got bindProbe
		problems, err := decodeStrict([]byte(tc.body), &got)
		switch {
		case tc.invalid:
			if !errors.Is(err, models.ErrInvalidJSON) {
				t.Errorf("%s: got %v, %v; want invalid_json", tc.name, problems, err)
			}
		case err != nil:
			t.Errorf("%s: got %v, want problems %v", tc.name, err, tc.problems)
		case !maps.Equal(problems, tc.problems):
			t.Errorf("%s: got problems %v, want %v", tc.name, problems, tc.problems)
		case tc.check != nil && !tc.check(got):
			t.Errorf("%s: decoded %+v", tc.name, got)
		}
	}
}
