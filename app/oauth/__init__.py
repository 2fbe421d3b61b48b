"""OAuth server endpoints (token refresh) the way oauth.bitrix.info answers them."""
