"""Classrooms: a teacher's class of students, their tokens, quotas, fair queue and board."""
