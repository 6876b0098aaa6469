-- A refresh token expires with its grant (a successor inherits the grant's expiry, and grants
-- are never extended), so the purge removes refresh tokens through their dead grant and the
-- tokens' own expiry index only cost a B-tree write at every rotation (issue 14).
DROP INDEX refresh_tokens_expiry;
