package api

import (
	"log/slog"
	"net/http"
	"strconv"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/go-playground/validator/v10"

	"github.com/sessionauth/api/middleware"
	"github.com/sessionauth/api/models"
	"github.com/sessionauth/api/services"
)

type usersResponse struct {
	Users []userResponse `json:"users"`
	Total int64          `json:"total"`
}

func handleListUsers(admin *services.Admin) gin.HandlerFunc {
	return func(c *gin.Context) {
		q, err := parseUserQuery(c)
		if err != nil {
			_ = c.Error(err)
			return
		}
		users, total, err := admin.ListUsers(c.Request.Context(), q)
		if err != nil {
			_ = c.Error(err)
			return
		}
		out := usersResponse{Users: make([]userResponse, 0, len(users)), Total: total}
		for _, u := range users {
			out.Users = append(out.Users, newUserResponse(u))
		}
		c.JSON(http.StatusOK, out)
	}
}

// parseUserQuery reads limit (1..100, default 50), offset (>= 0) and email
// (normalised as stored emails are, so a full-width filter finds the ASCII
// address); every problem, of any parameter, is named at once.
func parseUserQuery(c *gin.Context) (services.UserQuery, error) {
	fields := queryProblems(c)
	q := services.UserQuery{Limit: 50, Email: services.NormalizeEmail(c.Query("email"))}
	if v, ok := c.GetQuery("limit"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			fields["limit"] = "must be a whole number from 1 to 100"
		}
		q.Limit = n
	}
	if v, ok := c.GetQuery("offset"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			fields["offset"] = "must be a whole number of 0 or more"
		}
		q.Offset = n
	}
	if _, named := fields["email"]; !named {
		switch {
		case utf8.RuneCountInString(q.Email) > services.MaxEmailLength:
			fields["email"] = "must be at most 254 characters"
		case !services.ASCII(q.Email):
			fields["email"] = "must be written in ASCII (an internationalised domain in its xn-- form)"
		}
	}
	if len(fields) > 0 {
		return q, models.Validation(fields)
	}
	return q, nil
}

// userIDParam returns the :id of the path, or not_found when it is not a
// user id in canonical form (services.ValidUserID): the same answer as an
// unknown user, and the database never sees it.
func userIDParam(c *gin.Context) (string, error) {
	id := c.Param("id")
	if !services.ValidUserID(id) {
		return "", models.ErrNotFound
	}
	return id, nil
}

func handleCreateUser(v *validator.Validate, admin *services.Admin, log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		var req createUserRequest
		if err := bindJSON(c, v, &req); err != nil {
			_ = c.Error(err)
			return
		}
		user, err := admin.CreateUser(c.Request.Context(), services.Registration{Email: req.Email, Name: req.Name, Password: req.Password, Role: req.Role})
		if err != nil {
			_ = c.Error(err)
			return
		}
		securityEvent(c, log, "user_created", middleware.CurrentSession(c).UserID, slog.String("target_user_id", user.ID))
		c.JSON(http.StatusCreated, userEnvelope{User: newUserResponse(user)})
	}
}

func handlePatchUser(v *validator.Validate, admin *services.Admin, sess *middleware.SessionManager, log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		var req patchUserRequest
		if err := bindJSON(c, v, &req); err != nil {
			_ = c.Error(err)
			return
		}
		if req.Role == nil && req.Disabled == nil {
			_ = c.Error(models.Validation(map[string]string{"role": "send role or disabled", "disabled": "send role or disabled"}))
			return
		}
		id, err := userIDParam(c)
		var result services.UpdateResult
		if err == nil {
			result, err = admin.UpdateUser(c.Request.Context(), id, services.UserPatch{Role: req.Role, Disabled: req.Disabled})
		}
		if err != nil {
			_ = c.Error(err)
			return
		}
		actor := middleware.CurrentSession(c)
		if result.Revoked && result.User.ID == actor.UserID {
			sess.ExpireCookie(c) // the admin changed themself: their session just ended
		}
		for _, field := range result.Changed {
			event := "role_changed"
			if field == "disabled" {
				event = "user_disabled_changed"
			}
			securityEvent(c, log, event, actor.UserID, slog.String("target_user_id", result.User.ID),
				slog.String("role", string(result.User.Role)), slog.Bool("disabled", result.User.Disabled))
		}
		c.JSON(http.StatusOK, userEnvelope{User: newUserResponse(result.User)})
	}
}

func handleAdminLogoutAll(admin *services.Admin, sess *middleware.SessionManager, log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		id, err := userIDParam(c)
		var revoked int
		if err == nil {
			revoked, err = admin.LogoutUser(c.Request.Context(), id)
		}
		if err != nil {
			_ = c.Error(err)
			return
		}
		actor := middleware.CurrentSession(c)
		if id == actor.UserID {
			sess.ExpireCookie(c)
		}
		securityEvent(c, log, "logout_all", actor.UserID, slog.String("target_user_id", id), slog.Int("revoked", revoked))
		c.JSON(http.StatusOK, revokedResponse{Success: true, Revoked: revoked})
	}
}
