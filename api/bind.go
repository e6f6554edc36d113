package api

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/go-playground/validator/v10"

	"github.com/sessionauth/api/models"
	"github.com/sessionauth/api/services"
)

// maxBodyBytes is the contract's body limit (64 KiB).
const maxBodyBytes = 64 << 10

// newValidator returns api's own validator, reporting JSON field names.
// Gin's package-level one is left alone.
func newValidator() *validator.Validate {
	v := validator.New(validator.WithRequiredStructEnabled())
	v.RegisterTagNameFunc(func(f reflect.StructField) string {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			return ""
		}
		return name
	})
	// visible: at least one character that draws something (names).
	_ = v.RegisterValidation("visible", func(fl validator.FieldLevel) bool { return services.HasVisible(fl.Field().String()) })
	// jsonobject: a raw member (jsontext.Value) that is a JSON object (a passkey credential).
	_ = v.RegisterValidation("jsonobject", func(fl validator.FieldLevel) bool {
		raw, ok := fl.Field().Interface().(jsontext.Value)
		return ok && raw.Kind() == '{'
	})
	return v
}

// normalizer is a request DTO that trims its fields before validation.
type normalizer interface{ normalize() }

// bindJSON reads and validates the body into dst, a pointer to a DTO
// struct, in the contract's order: 413 too large (also chunked), 415 not
// JSON, 400 invalid_json (not one object, a duplicate key at any depth,
// trailing bytes), 400 validation_failed naming every bad JSON field at once
// (wrong type, control or format characters, then the validator's rules).
func bindJSON(c *gin.Context, v *validator.Validate, dst any) error {
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, maxBodyBytes))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return models.ErrPayloadTooLarge
	}
	if err != nil {
		return models.ErrInvalidJSON
	}
	if mediaType, _, err := mime.ParseMediaType(c.GetHeader("Content-Type")); err != nil || mediaType != "application/json" {
		return models.ErrUnsupportedMediaType
	}
	problems, err := decodeStrict(body, dst)
	if err != nil {
		return err
	}
	if n, ok := dst.(normalizer); ok {
		n.normalize()
	}
	addValidationProblems(problems, v.Struct(dst))
	if len(problems) > 0 {
		return models.Validation(problems)
	}
	return nil
}

// decodeStrict decodes a JSON object into the struct dst points to. Keys
// match field names exactly (a "Role" is an unknown key, ignored, and never
// sets "role"), so a proxy or a log that reads the body another way sees
// what the handler sees. The object is first split into raw members, which
// refuses duplicate keys at any depth, invalid UTF-8 and trailing data
// (invalid_json); then each known member is decoded on its own, so every
// member of the wrong type or holding a control or format character is
// named in the problems returned, not only the first. A raw member field
// must be a jsontext.Value.
func decodeStrict(body []byte, dst any) (map[string]string, error) {
	if rest := bytes.TrimLeft(body, " \t\r\n"); len(rest) == 0 || rest[0] != '{' {
		return nil, models.ErrInvalidJSON
	}
	var members map[string]jsontext.Value
	if err := json.Unmarshal(body, &members); err != nil {
		return nil, models.ErrInvalidJSON
	}
	problems := map[string]string{}
	target := reflect.ValueOf(dst).Elem()
	for i := range target.NumField() {
		name := jsonName(target.Type().Field(i))
		raw, sent := members[name]
		if name == "" || !sent {
			continue
		}
		field := target.Field(i)
		switch {
		case !plainTextValue(raw):
			problems[name] = services.PlainTextProblem
		case json.Unmarshal(raw, field.Addr().Interface()) != nil:
			field.SetZero()
			problems[name] = "must be a " + jsonKind(field.Type())
		}
	}
	return problems, nil
}

// queryProblems names every query parameter (known to the route or not)
// with a control or format character or invalid UTF-8, for the handler to
// add its own checks to: such a value is validation_failed, and never
// reaches the database.
func queryProblems(c *gin.Context) map[string]string {
	problems := map[string]string{}
	for name, values := range c.Request.URL.Query() {
		for _, v := range values {
			if !services.PlainText(v) || !services.PlainText(name) {
				problems[strings.ToValidUTF8(name, "\uFFFD")] = services.PlainTextProblem
			}
		}
	}
	return problems
}

// jsonName is the JSON name of an exported struct field, "" for none.
func jsonName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	if !f.IsExported() || name == "-" {
		return ""
	}
	if name == "" {
		return f.Name
	}
	return name
}

// plainTextValue reports whether every string of a raw JSON value (member
// names included, at any depth) is services.PlainText.
func plainTextValue(raw jsontext.Value) bool {
	if bytes.IndexByte(raw, '\\') < 0 && services.ASCII(string(raw)) {
		return true // no escape and no multi-byte character: nothing to find
	}
	dec := jsontext.NewDecoder(bytes.NewReader(raw))
	for {
		tok, err := dec.ReadToken()
		if err != nil {
			return err == io.EOF
		}
		if tok.Kind() == '"' && !services.PlainText(tok.String()) {
			return false
		}
	}
}

func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int64, reflect.Float64:
		return "number"
	case reflect.Struct, reflect.Map:
		return "JSON object"
	case reflect.Slice, reflect.Array:
		return "JSON array"
	default:
		return "JSON " + t.Kind().String()
	}
}

// addValidationProblems adds the validator's verdict per JSON field to
// problems, keeping a problem already found for the same field (a member of
// the wrong type was left empty, which the validator calls missing).
func addValidationProblems(problems map[string]string, err error) {
	var errs validator.ValidationErrors
	if !errors.As(err, &errs) {
		return
	}
	for _, fe := range errs {
		if _, named := problems[fe.Field()]; !named {
			problems[fe.Field()] = fieldMessage(fe)
		}
	}
}

func fieldMessage(fe validator.FieldError) string {
	switch fe.Tag() {
	case "required":
		return "is required"
	case "email":
		return "must be a valid email address"
	case "min":
		return "must be at least " + fe.Param() + " characters"
	case "max":
		return "must be at most " + fe.Param() + " characters"
	case "ascii":
		return "must be written in ASCII (an internationalised domain in its xn-- form)"
	case "visible":
		return "must contain at least one visible character"
	case "jsonobject":
		return "must be a JSON object"
	case "oneof":
		return "must be one of: " + strings.ReplaceAll(fe.Param(), " ", ", ")
	default:
		return "is invalid"
	}
}
