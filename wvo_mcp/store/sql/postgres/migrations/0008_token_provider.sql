-- The provider an agent token is bound to (issue 43; SQLite 0015), given by `tokens add
-- --provider`. NULL (every token made before): the provider its agent registered first.
ALTER TABLE api_tokens ADD COLUMN provider text COLLATE "C";
