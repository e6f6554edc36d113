package api

import (
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/go-playground/validator/v10"

	"github.com/sessionauth/api/middleware"
	"github.com/sessionauth/api/models"
	"github.com/sessionauth/api/services"
)

type renameRequest struct {
	Name string `json:"name" validate:"required,min=1,max=100,visible"`
}

func (r *renameRequest) normalize() { r.Name = services.NormalizeName(r.Name) }

type deleteAccountRequest struct {
	Password string `json:"password" validate:"required,max=128"`
}

// handleRename changes the caller's name; every live session shows it at once.
func handleRename(v *validator.Validate, accounts *services.Accounts) gin.HandlerFunc {
	return func(c *gin.Context) {
		var req renameRequest
		if err := bindJSON(c, v, &req); err != nil {
			_ = c.Error(err)
			return
		}
		user, err := accounts.Rename(c.Request.Context(), middleware.CurrentSession(c).UserID, req.Name)
		if err != nil {
			_ = c.Error(err)
			return
		}
		c.JSON(http.StatusOK, userEnvelope{User: newUserResponse(user)})
	}
}

// handleDeleteAccount closes the caller's account after a password proof.
func handleDeleteAccount(v *validator.Validate, accounts *services.Accounts, sess *middleware.SessionManager, events *securityEvents) gin.HandlerFunc {
	return func(c *gin.Context) {
		var req deleteAccountRequest
		if err := bindJSON(c, v, &req); err != nil {
			_ = c.Error(err)
			return
		}
		rec := middleware.CurrentSession(c)
		if err := accounts.Delete(c.Request.Context(), rec.UserID, rec.Email, req.Password, c.ClientIP()); err != nil {
			events.proofFailure(c, rec.UserID, err)
			_ = c.Error(err)
			return
		}
		sess.ExpireCookie(c)
		events.record(c, models.EventUserDeleted, rec.UserID, rec.UserID)
		c.Status(http.StatusNoContent)
	}
}
