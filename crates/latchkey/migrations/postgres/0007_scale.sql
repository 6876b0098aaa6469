-- What a database of many clients needs to start quickly (issue 14): the config clients
-- that left the file are found without reading every registration.
CREATE INDEX clients_source ON clients (source);
