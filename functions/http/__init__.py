"""The REST front door, once: who is at the door (access), what every answer carries (answers, cors), errors as HTTP
answers (error_mapping), the job form (multipart), the resolver and its feature routers (resolver), what each route
declares (route_facts), and the OpenAPI document made of all of it (contract)."""
