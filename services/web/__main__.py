import sys

from services.web.service import main

sys.exit(main())
