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

// expireOwnCookie expires the caller's cookie when the admin acted on their
// own account (whose sessions just ended), and returns the caller's session.
func expireOwnCookie(c *gin.Context, sess *middleware.SessionManager, userID string) *models.Session {
	actor := middleware.CurrentSession(c)
	if userID == actor.UserID {
		sess.ExpireCookie(c)
	}
	return actor
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

func handleCreateUser(v *validator.Validate, admin *services.Admin, events *securityEvents) gin.HandlerFunc {
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
		events.record(c, models.EventUserCreated, middleware.CurrentSession(c).UserID, user.ID, slog.String("role", string(user.Role)))
		c.JSON(http.StatusCreated, userEnvelope{User: newUserResponse(user)})
	}
}

func handlePatchUser(v *validator.Validate, admin *services.Admin, sess *middleware.SessionManager, events *securityEvents) gin.HandlerFunc {
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
			event := models.EventRoleChanged
			switch {
			case field == "disabled" && result.User.Disabled:
				event = models.EventUserDisabled
			case field == "disabled":
				event = models.EventUserEnabled
			}
			events.record(c, event, actor.UserID, result.User.ID, slog.String("role", string(result.User.Role)),
				slog.Bool("disabled", result.User.Disabled))
		}
		c.JSON(http.StatusOK, userEnvelope{User: newUserResponse(result.User)})
	}
}

// handleDeleteUser deletes a user; an admin deleting themself also gets the
// cookie expired.
func handleDeleteUser(admin *services.Admin, sess *middleware.SessionManager, events *securityEvents) gin.HandlerFunc {
	return func(c *gin.Context) {
		id := c.Param("id")
		if err := admin.DeleteUser(c.Request.Context(), id); err != nil {
			_ = c.Error(err)
			return
		}
		actor := expireOwnCookie(c, sess, id)
		events.record(c, models.EventUserDeleted, actor.UserID, id)
		c.Status(http.StatusNoContent)
	}
}

func handleAdminLogoutAll(admin *services.Admin, sess *middleware.SessionManager, events *securityEvents) gin.HandlerFunc {
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
		actor := expireOwnCookie(c, sess, id)
		events.record(c, models.EventLogoutAll, actor.UserID, id, slog.Int("revoked", revoked))
		c.JSON(http.StatusOK, revokedResponse{Success: true, Revoked: revoked})
	}
}

type userDetailResponse struct {
	User     userResponse      `json:"user"`
	Sessions []sessionResponse `json:"sessions"`
}

// handleGetUser answers one user and their live sessions, none marked
// current: the listing is about that user, not about the caller's device.
func handleGetUser(admin *services.Admin, lifetimes models.SessionLifetimes) gin.HandlerFunc {
	return func(c *gin.Context) {
		if !services.ValidUserID(c.Param("id")) {
			_ = c.Error(models.ErrNotFound)
			return
		}
		user, sessions, err := admin.UserWithSessions(c.Request.Context(), c.Param("id"))
		if err != nil {
			_ = c.Error(err)
			return
		}
		c.JSON(http.StatusOK, userDetailResponse{User: newUserResponse(user), Sessions: newSessionResponses(sessions, lifetimes, "")})
	}
}

// handleAdminDeleteSession ends one session of a user by its handle; a
// handle that is not that user's is 404, whoever it belongs to.
func handleAdminDeleteSession(admin *services.Admin, sess *middleware.SessionManager, events *securityEvents) gin.HandlerFunc {
	return func(c *gin.Context) {
		userID, handle := c.Param("id"), c.Param("sid")
		if !services.ValidUserID(userID) || !validHandle(handle) {
			_ = c.Error(models.ErrNotFound)
			return
		}
		revoked, err := admin.RevokeSession(c.Request.Context(), userID, handle)
		if err == nil && !revoked {
			err = models.ErrNotFound
		}
		if err != nil {
			_ = c.Error(err)
			return
		}
		actor := middleware.CurrentSession(c)
		if userID == actor.UserID && handle == actor.Handle() {
			sess.ExpireCookie(c) // the admin ended their own session
		}
		events.record(c, models.EventSessionRevoked, actor.UserID, userID, slog.String("session", handle))
		c.Status(http.StatusNoContent)
	}
}
