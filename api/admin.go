package api

import (
	"log/slog"
	"net/http"
	"strconv"
	"strings"

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

// parseUserQuery reads limit (1..100, default 50), offset (>= 0) and email.
func parseUserQuery(c *gin.Context) (services.UserQuery, error) {
	q := services.UserQuery{Limit: 50, Email: strings.TrimSpace(c.Query("email"))}
	fields := map[string]string{}
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
	if len(q.Email) > 254 {
		fields["email"] = "must be at most 254 characters"
	}
	if len(fields) > 0 {
		return q, models.Validation(fields)
	}
	return q, nil
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
		result, err := admin.UpdateUser(c.Request.Context(), c.Param("id"), services.UserPatch{Role: req.Role, Disabled: req.Disabled})
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

// handleDeleteUser deletes a user; an admin deleting themself also gets the
// cookie expired.
func handleDeleteUser(admin *services.Admin, sess *middleware.SessionManager, log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		id := c.Param("id")
		if err := admin.DeleteUser(c.Request.Context(), id); err != nil {
			_ = c.Error(err)
			return
		}
		actor := middleware.CurrentSession(c)
		if id == actor.UserID {
			sess.ExpireCookie(c)
		}
		securityEvent(c, log, "user_deleted", actor.UserID, slog.String("target_user_id", id))
		c.Status(http.StatusNoContent)
	}
}

func handleAdminLogoutAll(admin *services.Admin, sess *middleware.SessionManager, log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		revoked, err := admin.LogoutUser(c.Request.Context(), c.Param("id"))
		if err != nil {
			_ = c.Error(err)
			return
		}
		actor := middleware.CurrentSession(c)
		if strings.EqualFold(c.Param("id"), actor.UserID) {
			sess.ExpireCookie(c)
		}
		securityEvent(c, log, "logout_all", actor.UserID, slog.String("target_user_id", c.Param("id")), slog.Int("revoked", revoked))
		c.JSON(http.StatusOK, revokedResponse{Success: true, Revoked: revoked})
	}
}
