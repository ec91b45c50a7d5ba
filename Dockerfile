# The BabyPpo web app (Blazor Server, Hangfire jobs in-process, TorchSharp on the CPU).
#   docker build -t babyppo .
#   docker run -p 5000:5000 -v babyppo-data:/app/data babyppo
# The data sets go under /app/data (mount them, e.g. -v /path/to/data:/app/data/sets and
# -e Data__Root=/app/data/sets); PostgreSQL by -e Database__Provider=Postgres
# -e ConnectionStrings__Postgres="Host=…;Database=babyppo;Username=…;Password=…".

FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src
COPY global.json Directory.Build.props Directory.Build.targets Directory.Packages.props BabyPpo.sln ./
COPY BabyPpo.Training/BabyPpo.Training.csproj BabyPpo.Training/
COPY BabyPpo.Evaluation/BabyPpo.Evaluation.csproj BabyPpo.Evaluation/
COPY BabyPpo.Web/BabyPpo.Web.csproj BabyPpo.Web/
RUN dotnet restore BabyPpo.Web/BabyPpo.Web.csproj
COPY BabyPpo.Training/ BabyPpo.Training/
COPY BabyPpo.Evaluation/ BabyPpo.Evaluation/
COPY BabyPpo.Web/ BabyPpo.Web/
RUN dotnet publish BabyPpo.Web/BabyPpo.Web.csproj -c Release --no-restore -o /app/publish

FROM mcr.microsoft.com/dotnet/aspnet:10.0 AS runtime
# libtorch needs OpenMP (libgomp); the rest of its dependencies are in the base image.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /app/publish ./
COPY data/demo/ data/demo/
COPY models/ models/
ENV ASPNETCORE_URLS=http://0.0.0.0:5000 \
    ASPNETCORE_ENVIRONMENT=Production
EXPOSE 5000
VOLUME /app/data
ENTRYPOINT ["dotnet", "BabyPpo.Web.dll"]
