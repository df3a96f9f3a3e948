-- Extra databases for the examples and the test suites (exam_db is created by POSTGRES_DB).
CREATE DATABASE rooms_db OWNER minos;
CREATE DATABASE minos_test OWNER minos;
