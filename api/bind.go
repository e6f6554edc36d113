package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/go-playground/validator/v10"

	"github.com/sessionauth/api/models"
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
	return v
}

// normalizer is a request DTO that trims its fields before validation.
type normalizer interface{ normalize() }

// bindJSON reads and validates the body into dst in the contract's order:
// 413 too large (also chunked), 415 not JSON, 400 invalid JSON (trailing
// bytes included), 400 validation_failed naming JSON fields.
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
	if err := decodeStrict(body, dst); err != nil {
		return err
	}
	if n, ok := dst.(normalizer); ok {
		n.normalize()
	}
	if err := v.Struct(dst); err != nil {
		return validationError(err)
	}
	return nil
}

// decodeStrict decodes one JSON value and refuses anything after it. A field
// of the wrong type is validation_failed naming that field.
func decodeStrict(body []byte, dst any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(dst); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			return models.Validation(map[string]string{typeErr.Field: "must be a " + jsonKind(typeErr.Type)})
		}
		return models.ErrInvalidJSON
	}
	if _, err := dec.Token(); err != io.EOF {
		return models.ErrInvalidJSON
	}
	if reflect.ValueOf(dst).Elem().Kind() == reflect.Struct && bytes.TrimSpace(body)[0] != '{' {
		return models.ErrInvalidJSON
	}
	return nil
}

func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int64, reflect.Float64:
		return "number"
	default:
		return "JSON " + t.Kind().String()
	}
}

// validationError turns validator errors into validation_failed with a
// readable message per JSON field.
func validationError(err error) error {
	var errs validator.ValidationErrors
	if !errors.As(err, &errs) {
		return models.ErrInvalidJSON
	}
	fields := make(map[string]string, len(errs))
	for _, fe := range errs {
		fields[fe.Field()] = fieldMessage(fe)
	}
	return models.Validation(fields)
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
	case "oneof":
		return "must be one of: " + strings.ReplaceAll(fe.Param(), " ", ", ")
	default:
		return "is invalid"
	}
}
