-- The provider an agent token is bound to (issue 43), given by `tokens add --provider`. NULL
-- (every token made before): the provider its agent registered first (services/routes.Bound).
ALTER TABLE api_tokens ADD COLUMN provider TEXT;
